"""g_phi, the metadata predictor: shapes, the class/regression switch, raw-scale outputs,
overfitting, save/load, and learning a simple rule better than copy-previous."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder
from neuralgym.models.metadata import (
    KINDS,
    Heads,
    MetadataConfig,
    MetadataPredictor,
    cache_batch,
    classes_as_steps,
    jumps_absolute,
    metadata_stats,
    to_tensors,
    widen_classes,
    with_relative,
    with_step_classes,
    with_variables,
    without_latents,
)

C, H, W_LAT = 2, 8, 6  # tiny latents
WINDOW = 4


def tiny_config(kind: str = "gru", **overrides) -> MetadataConfig:
    cfg = MetadataConfig(
        metadata_names=("x", "y", "lives"),
        kinds=("continuous", "continuous", "categorical"),
        num_classes=(0, 0, 4),
        mean=(50.0, -3.0, 2.0),
        std=(20.0, 0.5, 1.0),
        n_actions=3,
        latent_channels=C,
        latent_hw=(H, W_LAT),
        kind=kind,
        hidden=16,
        layers=1,
        heads=2,
        window=WINDOW,
        action_dim=4,
        latent_width=4,
        latent_downsamples=1,
        latent_pool=2,
        latent_dim=8,
    )
    return replace(cfg, **overrides)


def random_batch(b: int = 5, length: int = WINDOW, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    meta = torch.stack([50 + 20 * torch.randn(b, length + 2, generator=g),
                        -3 + 0.5 * torch.randn(b, length + 2, generator=g),
                        torch.randint(0, 4, (b, length + 2), generator=g).float()], dim=-1)
    return {
        "metadata": meta,  # (B, L+2, M)
        "latents": torch.randn(b, length, C, H, W_LAT, generator=g),
        "actions": torch.randint(0, 3, (b, length), generator=g),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_same_for_every_kind(kind: str) -> None:
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(kind))
    batch = random_batch()
    loss, logs = model(batch)
    assert loss.shape == () and torch.isfinite(loss)
    for name in ("x", "y", "lives"):
        assert f"mae/{name}" in logs and f"loss/{name}" in logs
    assert "acc/lives" in logs and "acc/x" not in logs
    out = model.predict(batch["metadata"][:, :-1], batch["latents"], batch["actions"])
    assert out.shape == (5, 3)
    # fewer steps than the window is allowed (start of an episode); more is not
    short = model.predict(batch["metadata"][:, -3:-1], batch["latents"][:, -1:],
                          batch["actions"][:, -1:])
    assert short.shape == (5, 3)
    long = random_batch(length=WINDOW + 1)
    with pytest.raises(ValueError, match="1 to 4 steps"):
        model.predict(long["metadata"][:, :-1], long["latents"], long["actions"])


@pytest.mark.parametrize("kind", KINDS)
def test_causal(kind: str) -> None:
    """The prediction of step s does not depend on anything after step s."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(kind))
    for p in model.head[-1].parameters():  # make the head non-trivial
        torch.nn.init.normal_(p)
    b = random_batch()
    m, z, a = b["metadata"][:, :-1], b["latents"], b["actions"]
    full = model.predict(m[:, :3], z[:, :2], a[:, :2])
    m2, z2, a2 = m.clone(), z.clone(), a.clone()
    m2[:, 3:] += 100
    z2[:, 2:] = -z2[:, 2:]
    a2[:, 2:] = (a2[:, 2:] + 1) % 3
    h1 = model._sequence(m, model.encode_latents(z), a)
    h2 = model._sequence(m2, model.encode_latents(z2), a2)
    torch.testing.assert_close(h1[:, :2], h2[:, :2], rtol=0, atol=1e-6)
    assert not torch.allclose(h1[:, 2:], h2[:, 2:])
    torch.testing.assert_close(full, model.predict(m2[:, :3], z2[:, :2], a2[:, :2]))


def test_predict_raw_scale_and_integer_categoricals() -> None:
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config())
    b = random_batch()
    prev = b["metadata"][:, -2]  # m_{t-1}
    out = model.predict(b["metadata"][:, :-1], b["latents"], b["actions"])
    # untrained (zero-initialised head, residual): every variable is copied from m_{t-1},
    # on the raw scale
    torch.testing.assert_close(out[:, :2], prev[:, :2], rtol=1e-5, atol=1e-4)
    assert torch.equal(out[:, 2], prev[:, 2])
    for p in model.head[-1].parameters():
        torch.nn.init.normal_(p)
    out = model.predict(b["metadata"][:, :-1], b["latents"], b["actions"])
    assert torch.equal(out[:, 2], out[:, 2].round())
    assert set(out[:, 2].tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert out[:, 0].abs().mean() > 5  # raw scale (mean 50), not normalised


def test_classification_regression_switch() -> None:
    torch.manual_seed(0)
    classes = MetadataPredictor(tiny_config())
    torch.manual_seed(0)
    reg = MetadataPredictor(tiny_config(categorical_as_classes=False))
    assert classes.classified == [2] and classes.regressed == [0, 1]
    assert reg.classified == [] and reg.regressed == [0, 1, 2]
    assert classes.head[-1].out_features == 2 + 4 and reg.head[-1].out_features == 3
    b = random_batch()
    loss_c, _ = classes(b)
    loss_r, logs_r = reg(b)
    assert loss_c.item() != loss_r.item() and "acc/lives" in logs_r
    for p in reg.head[-1].parameters():
        torch.nn.init.normal_(p)
    out = reg.predict(b["metadata"][:, :-1], b["latents"], b["actions"])
    assert torch.equal(out[:, 2], out[:, 2].round())  # a regressed categorical is rounded
    assert not torch.equal(out[:, 0], out[:, 0].round())  # a continuous one is not
    # num_classes 0 means regression even when classes are on
    assert MetadataPredictor(tiny_config(num_classes=(0, 0, 0))).classified == []


def test_integer_variables_are_rounded() -> None:
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(integer=(True, False, True)))
    for p in model.head[-1].parameters():
        torch.nn.init.normal_(p)
    b = random_batch()
    out = model.predict(b["metadata"][:, :-1], b["latents"], b["actions"])
    assert torch.equal(out[:, 0], out[:, 0].round())
    assert not torch.equal(out[:, 1], out[:, 1].round())


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        tiny_config(kind="rnn")
    with pytest.raises(ValueError, match="std"):
        tiny_config(std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="num_classes"):
        tiny_config(num_classes=(0, 0))
    with pytest.raises(ValueError, match="integer"):
        tiny_config(integer=(True,))


@pytest.mark.parametrize("kind", KINDS)
def test_overfits_tiny_batch(kind: str) -> None:
    """300 AdamW steps on one fixed batch of 8 windows: the loss falls at least 100x."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(kind, hidden=32))
    batch = random_batch(b=8)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss, _ = model(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final, _ = model(batch)
    assert final.item() * 100 < first, (first, final.item())


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(kind))
    for p in model.parameters():  # not the zero-initialised head
        torch.nn.init.normal_(p, std=0.3)
    folder = ModelFolder(tmp_path / "wm")
    folder.save_component("metadata", model, model.config)
    cfg = folder.component_config("metadata", MetadataConfig)
    assert cfg == model.config
    loaded = folder.load_component("metadata", MetadataPredictor(cfg))
    b = random_batch()
    args = (b["metadata"][:, :-1], b["latents"], b["actions"])
    assert torch.equal(model.predict(*args), loaded.predict(*args))
    assert torch.equal(model(b)[0], loaded(b)[0])


# -- a synthetic game with a simple rule ------------------------------------------------


def synthetic_cache(root: Path, episodes: int = 12, length: int = 80, seed: int = 0,
                    with_stats: bool = False) -> LatentCache:
    """x_t = x_{t-1} + 3 (a_{t-1} - 1); lives_t = (lives_{t-1} + [a_{t-1} = 2]) mod 4 (a
    counter); latents are noise. The last two episodes are the test split."""
    rng = np.random.default_rng(seed)
    metas, acts, rows, start = [], [], [], 0
    for e in range(episodes):
        a = rng.integers(0, 3, length)
        x = np.zeros(length + 1)
        lives = np.zeros(length + 1)
        x[0], lives[0] = rng.integers(-10, 10), 3
        for t in range(length):
            x[t + 1] = x[t] + 3 * (a[t] - 1)
            lives[t + 1] = (lives[t] + (a[t] == 2)) % 4
        metas.append(np.stack([x, lives], 1))
        acts.append(np.concatenate([a, [-1]]))
        rows.append((start, length + 1, int(e >= episodes - 2)))
        start += length + 1
    metadata = np.concatenate(metas)
    n = len(metadata)
    info: dict = {"env_id": "Synthetic-v0", "metadata_names": ["x", "lives"], "n_actions": 3,
                  "metadata_kinds": ["continuous", "categorical"]}
    if with_stats:
        info.update(metadata_mean=[0.0, 1.0], metadata_std=[10.0, 2.0])
    LatentCache.write(root, rng.standard_normal((n, C, H, W_LAT)), metadata,
                      np.concatenate(acts), np.asarray(rows), info)
    return LatentCache(root)


def test_metadata_stats(tmp_path: Path) -> None:
    cache = synthetic_cache(tmp_path / "a")
    stats = metadata_stats(cache, ("continuous", "categorical"))
    train_rows = np.concatenate([np.arange(s, s + n) for s, n, t in cache.episodes if t == 0])
    np.testing.assert_allclose(stats.mean, cache.metadata[train_rows].mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.std, cache.metadata[train_rows].std(0), rtol=1e-5)
    assert stats.num_classes == [0, 4] and not stats.notes  # lives 0..3
    assert stats.integer == [True, True]
    with_info = metadata_stats(synthetic_cache(tmp_path / "b", with_stats=True),
                               ("continuous", "categorical"))
    assert with_info.mean == [0.0, 1.0] and with_info.std == [10.0, 2.0]
    # x is not a class variable (negative values): regressed, with a note
    odd = metadata_stats(cache, ("categorical", "categorical"))
    assert odd.num_classes == [0, 4] and "x:" in odd.notes[0]
    # the game's class counts (GameSpec.class_counts) where they are more than the data's
    kinds = ("continuous", "categorical")
    assert metadata_stats(cache, kinds, (0, 22)).num_classes == [0, 22]
    assert metadata_stats(cache, kinds, (9, 2)).num_classes == [0, 4]  # data wins; x regressed


def test_widen_classes_keeps_predictions_and_copies_new_values() -> None:
    """A g_phi widened from 4 to 7 classes for lives predicts what it did for every m_{t-1} in
    0..3, copies a value past them (where the 4-class model clamps it to 3), and trains on
    targets up to 6; widening to as many classes as it has is a no-op."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config())
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))  # a trained-looking, non-zero head
    model.eval()
    assert widen_classes(model, (0, 0, 4)) is model and widen_classes(model, (0, 0, 2)) is model
    wide = widen_classes(model, (5, 5, 7))  # only the classified variable's entry counts
    assert wide.config.num_classes == (0, 0, 7) and wide.class_sizes == [7]
    assert wide.head[-1].out_features == 2 + 7
    wide.eval()
    b = random_batch(b=64)  # lives 0..3
    args = (b["metadata"][:, :-1], b["latents"], b["actions"])
    old, new = model.predict(*args), wide.predict(*args)
    torch.testing.assert_close(new[:, :2], old[:, :2])
    assert torch.equal(new[:, 2], old[:, 2])
    high = b["metadata"][:, :-1].clone()
    high[:, :, 2] = 5.0  # lives 5 throughout: outside the old classes
    assert set(model.predict(high, *args[1:])[:, 2].tolist()) == {3.0}  # clamped
    assert set(wide.predict(high, *args[1:])[:, 2].tolist()) == {5.0}  # copied
    b["metadata"][:, :, 2] = 6.0
    loss, logs = wide(b)
    loss.backward()
    assert torch.isfinite(loss) and wide.head[-1].weight.grad[2 + 6].abs().sum() > 0


def train_steps(model: MetadataPredictor, cache: LatentCache, steps: int) -> None:
    """`steps` AdamW steps (lr 3e-3, batch 32) on the cache's train windows."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train = cache.window_starts("train", WINDOW + 1, 1)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = to_tensors(cache_batch(cache, train[rng.integers(0, len(train), 32)], WINDOW))
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_learns_rule_better_than_copy_previous(tmp_path: Path) -> None:
    """400 steps (batch 32, GRU) on a rule the actions decide: held-out MAE of x below a
    quarter of the copy-previous MAE (seen: ~1/10), lives exact in >= 95% of test windows
    (seen: 100%; copy-previous: ~67%)."""
    cache = synthetic_cache(tmp_path / "cache")
    kinds = ("continuous", "categorical")
    stats = metadata_stats(cache, kinds)
    cfg = tiny_config("gru", metadata_names=("x", "lives"), kinds=kinds,
                      num_classes=tuple(stats.num_classes), mean=tuple(stats.mean),
                      std=tuple(stats.std), hidden=32)
    torch.manual_seed(0)
    model = MetadataPredictor(cfg)
    train_steps(model, cache, 400)
    test = cache.window_starts("test", WINDOW + 1, 1)
    b = cache_batch(cache, test, WINDOW)
    t = to_tensors(b)
    pred = model.predict(t["metadata"][:, :-1], t["latents"], t["actions"]).numpy()
    true, prev = b["metadata"][:, -1], b["metadata"][:, -2]
    mae, copy_mae = np.abs(pred[:, 0] - true[:, 0]).mean(), np.abs(prev[:, 0] - true[:, 0]).mean()
    assert mae < 0.25 * copy_mae, (mae, copy_mae)
    acc, copy_acc = (pred[:, 1] == true[:, 1]).mean(), (prev[:, 1] == true[:, 1]).mean()
    assert acc >= 0.95 and acc > copy_acc, (acc, copy_acc)


def test_cache_batch_indices(tmp_path: Path) -> None:
    """cache_batch lines up m_{t-W-1} .. m_t, Z_{t-W} .. Z_{t-1}, a_{t-W} .. a_{t-1}."""
    cache = synthetic_cache(tmp_path / "cache")
    last = cache.window_starts("train", WINDOW + 1, 1)[:3]
    b = cache_batch(cache, last, WINDOW)
    assert b["metadata"].shape == (3, WINDOW + 2, 2)
    assert b["latents"].shape == (3, WINDOW, C, H, W_LAT)
    assert b["actions"].shape == (3, WINDOW)
    i = int(last[1])  # the last input frame, t - 1
    np.testing.assert_array_equal(b["metadata"][1], cache.metadata[i - WINDOW:i + 2])
    np.testing.assert_array_equal(b["latents"][1], cache.latents[i - WINDOW + 1:i + 1])
    np.testing.assert_array_equal(b["actions"][1], cache.actions[i - WINDOW + 1:i + 1])
    # the rule holds between the inputs and the target: x_t = x_{t-1} + 3 (a_{t-1} - 1)
    m, a = b["metadata"], b["actions"]
    np.testing.assert_array_equal(m[:, 2:, 0], m[:, 1:-1, 0] + 3 * (a - 1))


def perturbed_model(kind: str, std: float) -> MetadataPredictor:
    """A tiny g_phi whose output layer is random (an untrained one copies m_{t-1})."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(kind))
    for p in model.head[-1].parameters():
        torch.nn.init.normal_(p, std=std)
    return model


def rollout_batch(b: int = 5, rollout: int = 3, seed: int = 1) -> dict[str, torch.Tensor]:
    """A batch for `forward(batch, rollout)`: W + R - 1 latents and actions, W + 1 + R metadata."""
    return random_batch(b, WINDOW + rollout - 1, seed)  # (B, W+R+1, M) metadata


@pytest.mark.parametrize("kind", KINDS)
def test_rollout_one_is_the_teacher_forced_window(kind: str) -> None:
    model = perturbed_model(kind, std=0.1)
    batch = random_batch()
    loss, logs = model(batch)
    again, logs1 = model(batch, rollout=1)
    torch.testing.assert_close(loss, again)
    assert logs == logs1
    with pytest.raises(ValueError, match="rollout of 5 calls"):
        model(batch, rollout=WINDOW + 1)  # fewer actions than calls


def test_rollout_feeds_its_own_predictions_back() -> None:
    """Call r of a rollout reads the model's earlier predictions as its newest metadata: its
    loss equals a teacher-forced window whose inputs hold those predictions."""
    model = perturbed_model("gru", std=0.3)
    R = 3
    batch = rollout_batch(rollout=R)
    m, z, a = batch["metadata"], batch["latents"], batch["actions"]
    loss, logs = model(batch, rollout=R)
    assert 0.0 <= logs["in_sync"] < 1.0  # random metadata: the fed values drift at once
    # by hand: predict m_t, feed it back, predict m_{t+1}, ...
    inputs, losses = m[:, :WINDOW + 1], []
    for r in range(R):
        window = {"metadata": torch.cat([inputs[:, -(WINDOW + 1):],
                                         m[:, r + WINDOW + 1:r + WINDOW + 2]], 1),
                  "latents": z[:, r:r + WINDOW], "actions": a[:, r:r + WINDOW]}
        # the targets of the earlier steps are the recorded ones, not the fed-back inputs
        fed = window["metadata"][:, :-1]  # (B, WINDOW+1, M)
        h = model._sequence(fed, model.encode_latents(window["latents"]), window["actions"])
        heads = model._heads(h, fed[:, 1:], fed[:, :-1])
        losses.append(model._loss(heads, m[:, r + 2:r + 2 + WINDOW], m[:, r:r + 1 + WINDOW])[0])
        pred = model.predict(inputs[:, -(WINDOW + 1):], z[:, r:r + WINDOW], a[:, r:r + WINDOW])
        inputs = torch.cat([inputs, pred[:, None]], 1)
    torch.testing.assert_close(loss, torch.stack(losses).mean())
    assert not torch.allclose(losses[0], losses[-1])  # later calls see other inputs
    loss.backward()  # gradients reach the model through every call
    assert all(p.grad is not None for p in model.head.parameters())


def test_rollout_holds_fed_back_predictions_to_step_limits() -> None:
    """With `step_limits`, what call r reads as its newest metadata is the prediction held to
    [m_{t+r-1} + lo, m_{t+r-1} + hi], as the dream holds it; with wide limits nothing changes."""
    model = perturbed_model("gru", std=0.3)
    R = 3
    batch = rollout_batch(rollout=R)
    seen: list[torch.Tensor] = []
    sequence = model._sequence

    def spy(metadata, features, actions):
        seen.append(metadata.detach().clone())
        return sequence(metadata, features, actions)

    model._sequence = spy  # type: ignore[method-assign]
    limits = torch.tensor([[-np.inf, -0.01, 0.0], [np.inf, 0.01, 0.0]])  # (2, M): x, y, lives
    inf = float("inf")  # every step counts, in sync or not: the fed values matter to the loss
    held, _ = model(batch, R, step_limits=limits, sync_tol=inf)
    for r in (1, 2):  # the calls that read a fed-back prediction
        step = seen[r][:, -1] - seen[r][:, -2]  # (B, M)
        assert (step[:, 2] == 0).all() and (step[:, 1].abs() <= 0.01 + 1e-6).all()
        assert (step[:, 1].abs() > 0.01 - 1e-6).any()  # y was held at a bound
    assert (seen[1][:, -1, 0] != seen[1][:, -2, 0]).any()  # the unbounded x moved
    free, _ = model(batch, R, sync_tol=inf)
    assert not torch.allclose(held, free)  # the limits changed what later calls read
    wide = torch.tensor([[-np.inf] * 3, [np.inf] * 3])
    torch.testing.assert_close(model(batch, R, step_limits=wide, sync_tol=inf)[0], free)


def test_rollout_with_a_dream_reads_the_dreamt_latents() -> None:
    """With `dream`, the unrolled steps read the latents it returns: a dream that returns the
    recorded latents changes nothing, one that returns others changes the loss, and it is
    called with the history so far, the actions after it and [m_{t+r-2}, m_{t+r-1}]."""
    model = perturbed_model("lstm", std=0.3)
    R = 3
    batch = rollout_batch(rollout=R)
    z, a = batch["latents"], batch["actions"]
    calls = []

    def recorded(latents, actions, metadata):
        n = latents.shape[1]
        calls.append((n, actions.shape, metadata.shape))
        torch.testing.assert_close(latents, z[:, :n])
        torch.testing.assert_close(actions, a[:, :n])
        return z[:, n]

    torch.testing.assert_close(model(batch, R, dream=recorded)[0], model(batch, R)[0])
    assert calls == [(WINDOW, (5, WINDOW), (5, 2, 3)), (WINDOW + 1, (5, WINDOW + 1), (5, 2, 3))]
    zeros = lambda lat, act, meta: torch.zeros_like(lat[:, 0])  # noqa: E731
    inf = float("inf")  # every step counts (random metadata drift out of sync at once)
    other = model(batch, R, dream=zeros, sync_tol=inf)[0]
    assert not torch.allclose(other, model(batch, R, sync_tol=inf)[0])


def test_cache_batch_rollout(tmp_path: Path) -> None:
    """cache_batch(rollout=R) extends the window by R - 1 latents/actions and metadata."""
    cache = synthetic_cache(tmp_path / "cache")
    last = cache.window_starts("train", WINDOW + 1, 3)[:2]
    b = cache_batch(cache, last, WINDOW, rollout=3)
    assert b["metadata"].shape == (2, WINDOW + 4, 2)
    assert b["latents"].shape == (2, WINDOW + 2, C, H, W_LAT)
    i = int(last[0])
    np.testing.assert_array_equal(b["metadata"][0], cache.metadata[i - WINDOW:i + 4])
    np.testing.assert_array_equal(b["actions"][0], cache.actions[i - WINDOW + 1:i + 3])
    one = cache_batch(cache, last, WINDOW)
    np.testing.assert_array_equal(b["metadata"][:, :WINDOW + 2], one["metadata"])
    dreamt = cache_batch(cache, last, WINDOW, rollout=3, dreamt=True)  # the window's only
    np.testing.assert_array_equal(dreamt["latents"], b["latents"][:, :WINDOW])
    np.testing.assert_array_equal(dreamt["actions"], b["actions"])
    bare = cache_batch(cache, last, WINDOW, rollout=3, latents=False)  # none read
    assert bare["latents"].shape == (2, WINDOW + 2, 0, 0, 0)
    np.testing.assert_array_equal(bare["metadata"], b["metadata"])
    np.testing.assert_array_equal(bare["actions"], b["actions"])


def test_change_weight_weighs_the_steps_where_a_class_changes() -> None:
    """The classified variable's cross-entropy is a weighted mean: steps where the recorded
    value changes weigh change_weight, the others 1; regressions are untouched."""
    model = MetadataPredictor(tiny_config())
    lives = torch.tensor([[1.0, 1.0, 2.0, 2.0]])  # (B=1, L=4): a change at step 2
    previous_lives = torch.tensor([[1.0, 1.0, 1.0, 1.0, 2.0]])  # m_{t-2} of step 0, then m_{t-1}
    target = torch.stack([torch.full((1, 4), 50.0), torch.full((1, 4), -3.0), lives], -1)
    previous = torch.stack([torch.full((1, 5), 50.0), torch.full((1, 5), -3.0),
                            previous_lives], -1)
    reg = torch.zeros(1, 4, 2)
    logits = [torch.tensor([[[0.0, 3.0, 1.0, 0.0]] * 4])]  # (1, 4, 4): favours class 1
    ce = torch.nn.functional.cross_entropy(logits[0][0], lives[0].long(), reduction="none")
    heads = Heads(reg, logits, None, previous[:, 1:])
    _, plain = model._loss(heads, target, previous, 1.0)
    _, weighted = model._loss(heads, target, previous, 5.0)
    w = torch.tensor([1.0, 1.0, 5.0, 1.0])
    assert plain[2] == pytest.approx(float(ce.mean()))
    assert weighted[2] == pytest.approx(float((ce * w).sum() / w.sum()))
    assert weighted[2] > plain[2]  # the missed change counts for more
    assert weighted[0] == plain[0] and weighted[1] == plain[1]
    # through forward: a batch without changes gives the same loss at any weight
    batch = random_batch()
    batch["metadata"][..., 2] = 1.0
    with torch.no_grad():
        assert float(model(batch, change_weight=7.0)[0]) == pytest.approx(float(model(batch)[0]))
        batch = random_batch()  # random lives: changes everywhere, the weights matter
        assert float(model(batch, change_weight=7.0)[0]) != pytest.approx(
            float(model(batch)[0]))


def test_closed_loop_class_target_is_the_recorded_change_where_in_sync() -> None:
    """In closed loop a classified variable learns the recorded change from the value it was
    fed (a point the model missed is not taught later, at a state with no cause for it), and
    only at the steps where the fed regressions are within sync_tol std of the recording."""
    model = MetadataPredictor(tiny_config())  # x: std 20, y: std 0.5, lives: 4 classes
    history = torch.tensor([[[50.0, -3.0, 1.0], [50.0, -3.0, 1.0], [50.0, -3.0, 1.0],
                             [50.0, -3.0, 2.0]]])  # (1, L+1=4, M): m_{t-2} of step 0, then m_{t-1}
    target = torch.tensor([[[50.0, -3.0, 1.0], [50.0, -3.0, 2.0], [50.0, -3.0, 2.0]]])
    fed = history[:, 1:].clone()  # (1, 3, M): the model missed the recorded change of step 1
    fed[0, 2, 2] = 1.0  # fed lives 1 where the recording had 2
    fed[0, 0, 0] = 51.0  # x drifted 1 (0.05 std): still in sync
    logits = [torch.randn(1, 3, 4)]
    heads = Heads(torch.zeros(1, 3, 2), logits, None, fed)
    ce = torch.nn.functional.cross_entropy(logits[0][0], torch.tensor([1, 2, 1]),
                                           reduction="none")  # step 2: copy the fed 1, not 2
    _, per_var = model._loss(heads, target, history)
    assert per_var[2] == pytest.approx(float(ce.mean()), rel=1e-5)
    _, weighted = model._loss(heads, target, history, change_weight=3.0)
    w = torch.tensor([1.0, 3.0, 1.0])
    assert weighted[2] == pytest.approx(float((ce * w).sum() / w.sum()), rel=1e-5)
    fed[0, 1, 0] = 56.0  # step 1's x drifted 0.3 std: the recorded change there is dropped
    _, per_var = model._loss(Heads(torch.zeros(1, 3, 2), logits, None, fed), target, history)
    assert per_var[2] == pytest.approx(float((ce[0] + ce[2]) / 2), rel=1e-5)
    _, every = model._loss(Heads(torch.zeros(1, 3, 2), logits, None, fed), target, history,
                           sync_tol=float("inf"))
    assert every[2] == pytest.approx(float(ce.mean()), rel=1e-5)


def test_event_weight_weighs_the_steps_that_break_constant_velocity() -> None:
    """A regressed variable's loss is a weighted mean: steps where m_t departs from
    2 m_{t-1} - m_{t-2} (a bounce) weigh event_weight, the others 1; steady motion is not an
    event; classes are untouched; reg_loss "l1" takes absolute errors; a bad name fails."""
    model = MetadataPredictor(tiny_config())
    # x moves +4 a step, then bounces: history 0, 4, 8, 12, 16 -> targets 8, 12, 16, 12
    x_hist = torch.tensor([[0.0, 4.0, 8.0, 12.0, 16.0]])
    x_target = torch.tensor([[8.0, 12.0, 16.0, 12.0]])  # step 3 is the event (guess 20)
    history = torch.stack([x_hist, torch.full((1, 5), -3.0), torch.ones(1, 5)], -1)
    target = torch.stack([x_target, torch.full((1, 4), -3.0), torch.ones(1, 4)], -1)
    reg = torch.zeros(1, 4, 2)
    logits = [torch.zeros(1, 4, 4)]
    norm = model.normalise(target)[..., 0]  # (1, 4)
    sq, ab = norm[0].pow(2), norm[0].abs()
    w = torch.tensor([1.0, 1.0, 1.0, 6.0])
    heads = Heads(reg, logits, None, history[:, 1:])
    _, plain = model._loss(heads, target, history)
    _, weighted = model._loss(heads, target, history, event_weight=6.0)
    _, l1 = model._loss(heads, target, history, event_weight=6.0, reg_loss="l1")
    assert plain[0] == pytest.approx(float(sq.mean()))
    assert weighted[0] == pytest.approx(float((sq * w).sum() / w.sum()))
    assert l1[0] == pytest.approx(float((ab * w).sum() / w.sum()))
    assert weighted[1] == plain[1] and weighted[2] == plain[2]  # no events, classes alike
    batch = random_batch()
    with torch.no_grad():  # random values: events everywhere but not at every step
        assert float(model(batch, event_weight=5.0)[0]) != pytest.approx(
            float(model(batch)[0]))
        assert float(model(batch, reg_loss="l1")[0]) != pytest.approx(float(model(batch)[0]))
    with pytest.raises(ValueError, match="reg_loss"):
        model(batch, reg_loss="huber")


def test_predict_expected_is_the_mean_class_under_the_predicted_distribution() -> None:
    """predict_expected gives predict's m_t and, for a classified variable, sum_k p_k k from
    its logits (the regressions as predict has them)."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config()).eval()
    batch = random_batch(b=6)
    meta, lat, act = batch["metadata"][:, :-1], batch["latents"], batch["actions"]
    out, expected = model.predict_expected(meta, lat, act)
    assert torch.equal(out, model.predict(meta, lat, act))
    p = model._last_heads(meta, lat, act).logits[0].float().softmax(-1)  # (B, 4): lives
    assert torch.allclose(expected[:, 2], (p * torch.arange(4.0)).sum(-1))
    assert torch.equal(expected[:, :2], out[:, :2])
    assert ((expected[:, 2] >= 0) & (expected[:, 2] <= 3)).all()


def test_predict_with_a_generator_draws_classes_at_their_probabilities() -> None:
    """predict(..., generator) draws each classified variable from softmax(logits): over many
    rows the class frequencies match the probabilities; the same seed gives the same draws."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config()).eval()
    batch = random_batch(b=1)
    meta, lat, act = (batch["metadata"][:, :-1].expand(4000, -1, -1),
                      batch["latents"].expand(4000, -1, -1, -1, -1),
                      batch["actions"].expand(4000, -1))
    p = model._last_heads(meta[:1], lat[:1], act[:1]).logits[0].float().softmax(-1)[0]  # (4,) lives
    draws = model.predict(meta, lat, act, torch.Generator().manual_seed(3))[:, 2]
    freq = torch.bincount(draws.long(), minlength=4).float() / len(draws)
    assert torch.allclose(freq, p, atol=0.03), (freq, p)
    again = model.predict(meta, lat, act, torch.Generator().manual_seed(3))[:, 2]
    assert torch.equal(draws, again)
    assert torch.equal(model.predict(meta[:1], lat[:1], act[:1])[:, 2], p.argmax()[None].float())


D = 5  # step classes -5..5 and a jump in the stepped tests


def stepped_config(**overrides) -> MetadataConfig:
    """x whole-numbered (stepped), y not, lives classified."""
    return tiny_config(integer=(True, False, True), delta_classes=D, **overrides)


def test_stepped_variables_are_the_whole_number_regressions() -> None:
    cfg = stepped_config()
    assert cfg.stepped == (0,) and cfg.step_classes == 2 * D + 2
    assert tiny_config(integer=(True, False, True)).stepped == ()  # D = 0: none
    assert tiny_config(delta_classes=D).stepped == ()  # only lives is whole, and classified
    model = MetadataPredictor(cfg)
    assert model.head[-1].out_features == 2 + 4 + 2 * D + 2
    with pytest.raises(ValueError, match="delta_classes"):
        tiny_config(delta_classes=-1)


def test_untrained_stepped_variable_keeps_its_velocity_and_a_jump_is_regressed() -> None:
    """With the zero-initialised head, a stepped x moves on by m_{t-1} - m_{t-2} (the bonus),
    exactly; after a change larger than D it copies m_{t-1} (the regression's residual); y, not
    whole, is copied as before."""
    model = MetadataPredictor(stepped_config()).eval()
    b = random_batch(b=3)
    meta = b["metadata"][:, :-1].clone()  # (B, W+1, M)
    meta[:, -2, 0] = torch.tensor([40.0, 40.0, 40.0])
    meta[:, -1, 0] = torch.tensor([44.0, 37.0, 52.0])  # changes +4, -3, +12 (a jump)
    pred = model.predict(meta, b["latents"], b["actions"])
    assert pred[:, 0].tolist() == [48.0, 34.0, 52.0]
    torch.testing.assert_close(pred[:, 1], meta[:, -1, 1])


def test_step_loss_is_the_change_from_the_fed_value_and_regresses_only_jumps() -> None:
    """A stepped variable's loss: cross-entropy of the class of m_t - (the m_{t-1} it was fed)
    plus its regression's error at the jumps alone; events weigh the cross-entropy."""
    model = MetadataPredictor(stepped_config())
    last = torch.tensor([[[10.0, -3.0, 1.0], [20.0, -3.0, 1.0], [30.0, -3.0, 1.0]]])  # (1, 3, M)
    target = torch.tensor([[[13.0, -3.0, 1.0], [19.0, -3.0, 1.0], [60.0, -3.0, 1.0]]])
    steps = torch.randn(1, 3, 1, 2 * D + 2)
    reg = torch.randn(1, 3, 2)
    heads = Heads(reg, [torch.zeros(1, 3, 4)], steps, last)
    classes = torch.tensor([3 + D, -1 + D, 2 * D + 1])  # +3, -1, a jump of +30
    ce = torch.nn.functional.cross_entropy(steps[0, :, 0], classes, reduction="none")
    jump_err = (reg[0, 2, 0] - model.normalise(target)[0, 2, 0]).pow(2)
    _, per_var = model._loss(heads, target)
    assert per_var[0] == pytest.approx(float(ce.mean() + jump_err), rel=1e-5)
    history = torch.cat([torch.tensor([[[0.0, -3.0, 1.0]]]), last], 1)  # x: 0, 10, 20, 30
    _, weighted = model._loss(heads, target, history, event_weight=4.0)
    # constant-velocity guesses 2 m_{t-1} - m_{t-2}: 20, 30, 40 against 13, 19, 60: all events
    w = torch.tensor([4.0, 4.0, 4.0])
    assert weighted[0] == pytest.approx(float((ce * w).sum() / w.sum() + jump_err), rel=1e-5)
    # in closed loop the fed m_{t-1} may have drifted from the recorded one: the class is the
    # recorded change, and a step where the fed x is beyond sync_tol std (20) does not count
    fed = last.clone()
    fed[0, 0, 0], fed[0, 1, 0] = 11.0, 0.0  # fed 11 (in sync) and 0 where the recording had 20
    drift = Heads(reg, [torch.zeros(1, 3, 4)], steps, fed)
    _, per_var = model._loss(drift, target, history)
    classes = torch.tensor([3 + D, -1 + D, 2 * D + 1])  # the recorded steps, not 13 - 11 etc.
    ce = torch.nn.functional.cross_entropy(steps[0, :, 0], classes, reduction="none")
    assert per_var[0] == pytest.approx(float((ce[0] + ce[2]) / 2 + jump_err), rel=1e-5)
    _, every = model._loss(drift, target, history, sync_tol=float("inf"))
    assert every[0] == pytest.approx(float(ce.mean() + jump_err), rel=1e-5)


def test_stepped_model_learns_exact_changes(tmp_path: Path) -> None:
    """400 steps on x_t = x_{t-1} + 3 (a_{t-1} - 1): the stepped g_phi predicts x exactly in
    >= 98% of the held-out windows (seen: 100%) and so does a 3-call closed loop."""
    cache = synthetic_cache(tmp_path / "cache")
    kinds = ("continuous", "categorical")
    stats = metadata_stats(cache, kinds)
    cfg = tiny_config("gru", metadata_names=("x", "lives"), kinds=kinds,
                      num_classes=tuple(stats.num_classes), mean=tuple(stats.mean),
                      std=tuple(stats.std), hidden=32, integer=(True, True), delta_classes=D)
    assert cfg.stepped == (0,)
    torch.manual_seed(0)
    model = MetadataPredictor(cfg)
    train_steps(model, cache, 400)
    model.eval()
    b = cache_batch(cache, cache.window_starts("test", WINDOW + 1, 3), WINDOW, rollout=3)
    t = to_tensors(b)
    meta, lat, act = t["metadata"], t["latents"], t["actions"]
    inputs = meta[:, :WINDOW + 1]
    for r in range(3):
        pred = model.predict(inputs[:, -(WINDOW + 1):], lat[:, r:r + WINDOW],
                             act[:, r:r + WINDOW])
        exact = (pred[:, 0] == meta[:, WINDOW + 1 + r, 0]).float().mean()
        assert exact >= 0.98, (r, exact)
        inputs = torch.cat([inputs, pred[:, None]], 1)


def test_with_step_classes_keeps_the_other_predictions() -> None:
    """Adding step classes to a trained g_phi copies every weight: y and lives are predicted
    as before, x moves at constant velocity until trained; the same D is a no-op, another D
    an error; widening the classes of a stepped g_phi keeps its step logits."""
    torch.manual_seed(0)
    model = MetadataPredictor(tiny_config(integer=(True, False, True)))
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    model.eval()
    stepped = with_step_classes(model, D).eval()
    assert stepped.config.stepped == (0,) and with_step_classes(stepped, D) is stepped
    with pytest.raises(ValueError, match="already"):
        with_step_classes(stepped, D + 1)
    b = random_batch(b=32)
    args = (b["metadata"][:, :-1], b["latents"], b["actions"])
    old, new = model.predict(*args), stepped.predict(*args)
    torch.testing.assert_close(new[:, 1:], old[:, 1:])
    m = args[0]
    velocity = (m[:, -1, 0] - m[:, -2, 0]).round()
    small = velocity.abs() <= D
    assert small.any() and (~small).any()
    torch.testing.assert_close(new[small, 0], (m[small, -1, 0] + velocity[small]).round())
    torch.testing.assert_close(new[~small, 0], old[~small, 0])  # jumps: the regression
    for p in stepped.head[-1].parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    wide = widen_classes(stepped, (0, 0, 6)).eval()
    torch.testing.assert_close(wide.predict(*args)[:, :2], stepped.predict(*args)[:, :2])


def trained_stepped_model() -> MetadataPredictor:
    """A tiny g_phi with step classes on x and lives classified, its weights moved off their
    initial values (as training leaves them), in eval mode."""
    torch.manual_seed(0)
    model = with_step_classes(MetadataPredictor(tiny_config(integer=(True, False, True))), D)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_classes_as_steps_keeps_the_others_and_starts_the_former_classes_at_no_change() -> None:
    """A classified variable (lives) becomes stepped: the stepped x and the regressed y are
    predicted as before, lives are copied until trained (even after a change, where a
    constant-velocity bonus would repeat it); the model's other weights are kept; a g_phi
    without step classes is refused, one without classes returned as it is."""
    model = trained_stepped_model()
    steps = classes_as_steps(model).eval()
    assert steps.classified == [] and steps.config.stepped == (0, 2)
    assert classes_as_steps(steps) is steps
    with pytest.raises(ValueError, match="needs step classes"):
        classes_as_steps(MetadataPredictor(tiny_config(integer=(True, False, True))))
    b = random_batch(b=32)
    b["metadata"][:, -2, 2] = b["metadata"][:, -3, 2] + 1  # lives just changed by one
    args = (b["metadata"][:, :-1], b["latents"], b["actions"])
    old, new = model.predict(*args), steps.predict(*args)
    torch.testing.assert_close(new[:, :2], old[:, :2])
    torch.testing.assert_close(new[:, 2], args[0][:, -1, 2])  # copied, not repeated
    torch.testing.assert_close(steps.latent_encoder[0].weight, model.latent_encoder[0].weight)
    # it trains: a step change of lives is now a class of -D..D
    loss, _ = steps(random_batch())
    loss.backward()
    assert steps.head[-1].weight.grad is not None


def test_jumps_absolute_regress_the_value_wherever_the_jump_starts() -> None:
    """With `jump_absolute` a stepped variable's jump gives m_t itself: forced to its jump
    class, x comes out at the same place from every m_{t-1} (Pong's ball going out of play
    to 0), where the residual model's jump lands relative to m_{t-1}; its other predictions
    are the model's, its other weights kept; a g_phi without step classes is refused."""
    model = trained_stepped_model()
    absolute = jumps_absolute(model).eval()
    assert absolute.config.jump_absolute and jumps_absolute(absolute) is absolute
    with pytest.raises(ValueError, match="need step classes"):
        jumps_absolute(MetadataPredictor(tiny_config()))
    b = random_batch(b=32)
    args = (b["metadata"][:, :-1], b["latents"], b["actions"])
    old, new = model.predict(*args), absolute.predict(*args)
    torch.testing.assert_close(new[:, 1:], old[:, 1:])  # y and lives: the same model
    torch.testing.assert_close(absolute.latent_encoder[0].weight, model.latent_encoder[0].weight)
    # force x's jump class (the last step logit), and put its regression at 30 on the raw scale
    jump_row = len(model.regressed) + sum(model.class_sizes) + model.config.step_classes - 1
    for m in (model, absolute):
        m.head[-1].bias.data[jump_row] += 1e3
        m.head[-1].weight.data[0] = 0.0
        m.head[-1].bias.data[0] = (30.0 - 50.0) / 20.0  # x: mean 50, std 20
    fed = args[0][:, -1, 0]
    assert fed.unique().numel() > 10  # jumps from many places
    torch.testing.assert_close(absolute.predict(*args)[:, 0], torch.full_like(fed, 30.0))
    torch.testing.assert_close(model.predict(*args)[:, 0], (fed - 20.0).round())  # relative
    loss, _ = absolute(random_batch())  # it trains
    loss.backward()
    assert absolute.head[-1].weight.grad is not None


@pytest.mark.parametrize("kind", KINDS)
def test_without_latents_reads_no_frames_and_keeps_predictions_at_the_folded_features(
        kind: str) -> None:
    """`latent_input` off: g_phi has no latent encoder and its predictions do not depend on
    the latents. `without_latents` with the features of a frame z0 folded in predicts what
    the model did on windows of z0, and not what it did on other frames; it trains."""
    torch.manual_seed(0)
    model = trained_stepped_model() if kind == "gru" else MetadataPredictor(tiny_config(kind))
    with torch.no_grad():  # outputs that depend on the inputs (the head starts at zero)
        model.head[-1].weight.normal_(0.0, 0.5)
    model.eval()
    b = random_batch(b=16)
    z0 = b["latents"][:1, :1]  # (1, 1, C, h, w)
    features = model.encode_latents(z0)[0, 0]  # (D,)
    plain = without_latents(model, features).eval()
    assert not plain.config.latent_input and not hasattr(plain, "latent_encoder")
    assert without_latents(plain) is plain
    assert plain.input_proj.in_features == model.input_proj.in_features - model.config.latent_dim
    meta, acts = b["metadata"][:, :-1], b["actions"]
    on_z0 = z0.expand(16, WINDOW, -1, -1, -1)
    torch.testing.assert_close(plain.predict(meta, b["latents"], acts),
                               plain.predict(meta, torch.zeros_like(b["latents"]), acts))
    heads = plain._last_heads(meta, b["latents"], acts)
    ref = model._last_heads(meta, on_z0, acts)
    torch.testing.assert_close(heads.reg, ref.reg)
    other = model._last_heads(meta, b["latents"], acts)
    assert not torch.allclose(other.reg, ref.reg, atol=1e-4)  # the frames did matter
    fresh = MetadataPredictor(replace(model.config, latent_input=False))
    assert fresh.input_proj.in_features == plain.input_proj.in_features
    loss, _ = plain.train()(random_batch())
    loss.backward()
    assert plain.input_proj.weight.grad is not None


def test_relative_inputs_look_up_one_pixel_differences() -> None:
    """With relative_classes R the positions' difference and each one's velocity select rows
    of a table, held to -R..R: a difference of 0 and of 1 reach different rows, all beyond R
    the last. Adding the tables to a trained g_phi (`with_relative`) keeps its predictions
    until they are trained; the same R again is a no-op, another an error."""
    torch.manual_seed(0)
    r = 3
    model = MetadataPredictor(tiny_config(integer=(True, True, True), relative_classes=r))
    cfg = model.config
    assert cfg.relative == (0, 1) and cfg.relative_pairs == ((0, 1),)  # lives: categorical
    rows = 2 * r + 1  # per table: x - y, then the velocities of x and of y
    assert model.relative_embedding.num_embeddings == 3 * rows
    with torch.no_grad():  # row k's vector: k in its first entry
        model.relative_embedding.weight.zero_()
        model.relative_embedding.weight[:, 0] = torch.arange(3 * rows, dtype=torch.float32)

    def looked_up(prev: tuple[float, float], before: tuple[float, float]) -> float:
        p = torch.tensor([[[*prev, 1.0]]])  # (1, 1, M)
        b = torch.tensor([[[*before, 1.0]]])
        return float(model.relative_input(p, b)[0, 0, 0].detach())

    # x - y = 1 (row r+1), x still (row rows + r), y still (row 2 rows + r)
    assert looked_up((10, 9), (10, 9)) == (r + 1) + (rows + r) + (2 * rows + r)
    assert looked_up((10, 10), (10, 10)) == r + (rows + r) + (2 * rows + r)  # one pixel less
    # x - y = 10 and x's velocity +5 are held to R; y's velocity -9 to -R
    assert looked_up((10, 0), (5, 9)) == 2 * r + (rows + 2 * r) + 2 * rows
    assert looked_up((40, 0), (5, 20)) == looked_up((10, 0), (5, 9))

    plain = MetadataPredictor(tiny_config(integer=(True, True, True)))
    for p in plain.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    plain.eval()
    added = with_relative(plain, r).eval()
    assert added.config.relative_classes == r and with_relative(added, r) is added
    with pytest.raises(ValueError, match="already"):
        with_relative(added, r + 1)
    b = random_batch(b=16)
    args = (b["metadata"][:, :-1].round(), b["latents"], b["actions"])
    torch.testing.assert_close(added.predict(*args), plain.predict(*args))
    with torch.no_grad():
        added.relative_embedding.weight.normal_()
    assert not torch.allclose(added.predict(*args), plain.predict(*args))


def test_with_variables_keeps_the_old_predictions_and_copies_the_new() -> None:
    """A trained g_phi (x and y regressed, x stepped; lives classified) given a stepped
    variable between x and y and a categorical one at the end predicts x, y and lives as
    before; the stepped newcomer moves at constant velocity and the categorical one keeps its
    class, until trained, and both learn; the old variables keep their normalisation and
    classes, the new ones take the given ones."""
    model = trained_stepped_model()  # x stepped (integer), y regressed, lives 4 classes
    new = with_variables(model, ("x", "timer", "y", "lives", "flag"),
                         ("continuous", "continuous", "continuous", "categorical", "categorical"),
                         (9, 0, 9, 9, 3), (0.0, 30.0, 0.0, 0.0, 1.0), (1.0, 20.0, 1.0, 1.0, 0.5),
                         (False, True, False, False, True)).eval()
    c = new.config
    assert c.metadata_names == ("x", "timer", "y", "lives", "flag")
    assert c.num_classes == (0, 0, 0, 4, 3) and c.mean == (50.0, 30.0, -3.0, 2.0, 1.0)
    assert c.std == (20.0, 20.0, 0.5, 1.0, 0.5) and c.stepped == (0, 1)
    assert c.classified == (3, 4) and c.integer == (True, True, False, True, True)
    b = random_batch(b=32)
    g = torch.Generator().manual_seed(1)
    timer = torch.randint(0, 60, (32, WINDOW + 2), generator=g).float()
    flag = torch.randint(0, 3, (32, WINDOW + 2), generator=g).float()
    m = b["metadata"]
    wide = torch.stack([m[..., 0], timer, m[..., 1], m[..., 2], flag], -1)  # (B, L+2, 5)
    old = model.predict(m[:, :-1], b["latents"], b["actions"])  # (B, 3)
    got = new.predict(wide[:, :-1], b["latents"], b["actions"])  # (B, 5)
    torch.testing.assert_close(got[:, [0, 2, 3]], old)
    velocity = timer[:, -2] - timer[:, -3]
    small = velocity.abs() <= D
    assert small.any()
    torch.testing.assert_close(got[small, 1], timer[small, -2] + velocity[small])
    torch.testing.assert_close(got[:, 4], flag[:, -2])
    loss, _ = new.train()({**b, "metadata": wide})
    loss.backward()
    assert new.input_proj.weight.grad[:, 1].abs().sum() > 0  # the new inputs learn
    assert with_variables(model, ("x", "y", "lives"), (), (), (), (), ()) is model
    with pytest.raises(ValueError, match="missing"):
        with_variables(model, ("x", "timer"), ("continuous",) * 2, (0, 0), (0.0, 0.0),
                       (1.0, 1.0), (True, True))
