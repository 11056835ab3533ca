"""training/prepare_latents.py on the tiny Breakout dataset with a tiny VAE: the cache matches
direct encoding, keeps episodes, actions, splits and metadata, and its windows sample right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralgym.data import Dataset
from neuralgym.latents import LatentCache, boosted_cdf
from neuralgym.model_folder import ModelFolder
from neuralgym.models.vae import FrameVAE, VAEConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "prepare_latents.py"


@pytest.fixture(scope="module")
def model_dir(breakout_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world-model folder with a tiny untrained VAE whose normalisation is fitted."""
    torch.manual_seed(0)
    vae = FrameVAE(VAEConfig(210, 160, block_out_channels=(2, 4, 4), latent_channels=4,
                             norm_num_groups=2)).eval()
    frames = breakout_dataset.load(breakout_dataset.split("train")[0]).frames[:16]
    vae.fit_latent_normalization(frames)
    root = tmp_path_factory.mktemp("wm") / "model"
    folder = ModelFolder(root)
    folder.save_component("vae", vae, vae.config)
    folder.update(env_id=breakout_dataset.env_id)
    return root


@pytest.fixture(scope="module")
def cache_dir(model_dir: Path, breakout_dataset: Dataset, run_script) -> Path:
    out = model_dir.parent / "cache"
    run_script(SCRIPT, "--data", breakout_dataset.root, "--model", model_dir, "--out", out,
               "--batch-size", "50", "--device", "cpu", check=True)
    return out


def test_cache_layout(cache_dir: Path, breakout_dataset: Dataset) -> None:
    cache = LatentCache(cache_dir)
    refs = breakout_dataset.split("all")
    n = sum(r.length + 1 for r in refs)
    assert cache.latents.shape == (n, 4, 54, 40) and cache.latents.dtype == np.float16
    assert cache.metadata.shape == (n, len(breakout_dataset.metadata_names))
    assert cache.actions.shape == (n,)
    assert [p.name for p in cache_dir.parent.iterdir() if p.name.startswith(".tmp")] == []
    for (start, length, is_test), ref in zip(cache.episodes, refs, strict=True):
        ep = breakout_dataset.load(ref)
        assert length == len(ep.frames) and bool(is_test) == (ref.split == "test")
        np.testing.assert_array_equal(cache.metadata[start : start + length], ep.metadata)
        np.testing.assert_array_equal(cache.actions[start : start + length - 1], ep.actions)
        assert cache.actions[start + length - 1] == -1
    info = cache.info
    assert info["env_id"] == "NeuralBreakout-v0" and info["latent_shape"] == [4, 54, 40]
    assert info["metadata_names"] == list(breakout_dataset.metadata_names)
    assert info["vae_config"]["block_out_channels"] == [2, 4, 4]
    assert info["n_actions"] == 4 and len(info["metadata_kinds"]) == cache.metadata.shape[1]
    train = np.concatenate([breakout_dataset.load(r).metadata
                            for r in breakout_dataset.split("train")]).astype(np.float64)
    std = train.std(0)
    np.testing.assert_allclose(info["metadata_mean"], train.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(info["metadata_std"], np.where(std > 1e-6, std, 1.0), rtol=1e-6)


def test_latents_match_a_direct_encode(cache_dir: Path, model_dir: Path,
                                       breakout_dataset: Dataset) -> None:
    cache = LatentCache(cache_dir)
    vae = FrameVAE.from_folder(model_dir)
    refs = breakout_dataset.split("all")
    for row, ref in [(0, refs[0]), (-1, refs[-1])]:
        start, length, _ = cache.episodes[row]
        frames = breakout_dataset.load(ref).frames
        idx = [0, 49, 50, length - 1]  # across an encoder-batch boundary and the last frame
        direct = vae.encode(frames[idx]).numpy()
        np.testing.assert_allclose(cache.latents[start + np.asarray(idx)].astype(np.float32),
                                   direct, rtol=2e-3, atol=2e-3)  # float16 storage


def window_in_episode(cache: LatentCache, dataset: Dataset, i: int, split: str, k: int, t: int,
                      metadata: np.ndarray, actions: np.ndarray) -> bool:
    """Whether frames i .. i+K+T-1 of the cache lie in one episode of `split` whose metadata
    and actions at those steps are `metadata` (K+T, M) and `actions` (K-1+T,)."""
    ends = cache.episodes[:, 0] + cache.episodes[:, 1]
    row = int(np.flatnonzero((cache.episodes[:, 0] <= i) & (i < ends))[0])
    start, length, is_test = cache.episodes[row]
    s = i - start  # the window is steps s .. s+K+T-1 of this episode
    ep = dataset.load(dataset.split("all")[row])
    return (bool(is_test) == (split == "test") and s + k + t <= length
            and np.array_equal(metadata, ep.metadata[s : s + k + t])
            and np.array_equal(actions, ep.actions[s : s + k - 1 + t]))


def test_boosted_windows_are_drawn_as_often_as_asked(cache_dir: Path) -> None:
    """`change` is each window's latent MSE from its last context frame to its first target,
    and sampling by `boosted_cdf` draws the top share that many times as often."""
    cache = LatentCache(cache_dir)
    starts = cache.window_starts("train", 2, 1)
    change = cache.change(starts, chunk=7)  # chunks that do not divide the count
    lat = np.asarray(cache.latents, np.float32)
    direct = ((lat[starts + 1] - lat[starts]) ** 2).reshape(len(starts), -1).mean(1)
    np.testing.assert_allclose(change, direct, rtol=1e-6)
    cdf, cut = boosted_cdf(change, 0.05, 20.0)
    n = int((change > cut).sum())
    assert 0 < n < len(starts) and cdf[-1] == pytest.approx(1.0)

    def drawn_share(cdf: np.ndarray | None) -> float:
        w = cache.sample(starts, 4000, 2, 1, np.random.default_rng(1), cdf=cdf)
        d = ((w.target[:, 0] - w.context[:, -1]) ** 2).reshape(4000, -1).mean(1)
        return float((d > cut).mean())

    assert drawn_share(cdf) == pytest.approx(20 * n / (20 * n + len(starts) - n), abs=0.04)
    assert drawn_share(None) == pytest.approx(n / len(starts), abs=0.02)
    for top, boost in ((0.0, 2.0), (1.0, 2.0), (0.1, 0.0)):
        with pytest.raises(ValueError, match="0 < top < 1"):
            boosted_cdf(change, top, boost)


def test_reweighted_boosted_windows_have_the_uniform_draw_s_expectation(cache_dir: Path
                                                                       ) -> None:
    """With `reweight`, a window drawn by a boosted cdf weighs 1 / (N p): a boosted one 1/B
    of a plain one, and a weighted mean over boosted draws estimates the uniform mean."""
    cache = LatentCache(cache_dir)
    starts = cache.window_starts("train", 2, 1)
    change = cache.change(starts)
    cdf, cut = boosted_cdf(change, 0.05, 20.0)
    n, N = int((change > cut).sum()), len(starts)
    w = cache.sample(starts, 20000, 2, 1, np.random.default_rng(2), cdf=cdf, reweight=True)
    d = ((w.target[:, 0] - w.context[:, -1]) ** 2).reshape(20000, -1).mean(1)
    boosted = d > cut
    total = 20 * n + N - n  # the boost weights' sum
    np.testing.assert_allclose(w.weight[boosted], total / (N * 20), rtol=1e-5)
    np.testing.assert_allclose(w.weight[~boosted], total / N, rtol=1e-5)
    assert w.weight.dtype == np.float32
    # the weighted mean change over boosted draws is the plain mean over all windows
    assert float((w.weight * d).mean()) == pytest.approx(float(change.mean()), rel=0.1)
    assert float(d.mean()) > 1.5 * float(change.mean())  # unweighted: biased to the boosted
    assert cache.sample(starts, 8, 2, 1, np.random.default_rng(2), cdf=cdf).weight is None
    assert cache.sample(starts, 8, 2, 1, np.random.default_rng(2), reweight=True).weight is None


def test_windows_follow_their_episode(cache_dir: Path, breakout_dataset: Dataset) -> None:
    """Each sampled window is K+T consecutive frames of one episode: its metadata, actions and
    latents are the episode's at those steps."""
    cache = LatentCache(cache_dir)
    k, t = 3, 2
    lat = np.asarray(cache.latents)
    for split in ("train", "test"):
        starts = cache.window_starts(split, k, t)
        w = cache.sample(starts, 16, k, t, np.random.default_rng(0))
        assert w.context.shape == (16, k, 4, 54, 40) and w.target.shape == (16, t, 4, 54, 40)
        for b in range(16):
            # Locate the window by its K+T latents. Breakout repeats frames (before the ball
            # is served), so several places may fit: one of them must match in every way.
            window = np.concatenate([w.context[b], w.target[b]]).astype(np.float16)
            hits = [i for i in np.flatnonzero((lat == window[0]).all(axis=(1, 2, 3)))
                    if i + k + t <= len(lat) and np.array_equal(lat[i : i + k + t], window)]
            assert any(window_in_episode(cache, breakout_dataset, i, split, k, t,
                                         w.metadata[b], w.actions[b]) for i in hits), (b, hits)

def test_clear_errors(cache_dir: Path, model_dir: Path, breakout_dataset: Dataset,
                      tmp_path: Path, run_script) -> None:
    proc = run_script(SCRIPT, "--data", breakout_dataset.root, "--model", model_dir, "--out",
                      cache_dir)
    assert proc.returncode != 0 and "already exists" in proc.stderr
    proc = run_script(SCRIPT, "--data", breakout_dataset.root, "--model", tmp_path / "none",
                      "--out", tmp_path / "c")
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((model_dir / "config.json").read_text())["env_id"] == "NeuralBreakout-v0"


def test_without_a_model_a_cache_of_metadata_only(cache_dir: Path, breakout_dataset: Dataset,
                                                   tmp_path: Path, run_script) -> None:
    """No --model: no frame is read; the cache has the encoded cache's metadata, actions,
    episodes and statistics, latents of shape (N, 0, 0, 0), and the denoiser refuses it."""
    out = tmp_path / "meta"
    run_script(SCRIPT, "--data", breakout_dataset.root, "--out", out, "--device", "cpu",
               check=True)
    bare, full = LatentCache(out), LatentCache(cache_dir)
    assert not bare.has_latents and full.has_latents
    assert bare.latents.shape == (len(full.latents), 0, 0, 0) and bare.latent_shape == (0, 0, 0)
    np.testing.assert_array_equal(bare.metadata, full.metadata)
    np.testing.assert_array_equal(bare.actions, full.actions)
    np.testing.assert_array_equal(bare.episodes, full.episodes)
    for key in ("metadata_mean", "metadata_std", "metadata_names", "n_actions"):
        assert bare.info[key] == full.info[key]
    assert "vae_config" not in bare.info
    proc = run_script(ROOT / "training" / "train_denoiser.py", "--cache", out, "--out",
                      tmp_path / "model", "--device", "cpu")
    assert proc.returncode != 0 and "holds metadata and actions only" in proc.stderr
    assert "Traceback" not in proc.stderr
