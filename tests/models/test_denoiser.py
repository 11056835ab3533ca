"""Tiny-config tests of the denoiser (UNet backbone, shared encoders, LoRA, bases)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from neuralgym.model_folder import ModelFolder
from neuralgym.models.denoiser import NO_CONTEXT, BaseModel, Denoiser
from neuralgym.sampler import sample

pytestmark = pytest.mark.usefixtures("flush_denormals")


def test_unet_shapes(denoiser_case, tiny_denoiser):
    T, encoding, action_context, M = denoiser_case
    config = tiny_denoiser.config(frames_per_call=T, action_encoding=encoding,
                                  action_context=action_context, metadata_dim=M)
    assert config.n_tokens == (T if action_context == "future" else 2 + T) + (T if M else 0)
    tiny_denoiser.check_shapes(config)


def test_lora_stage_ignores_conditioning(tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(stage="lora"))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "null_token" in trained
    assert not any(n.startswith(("action_encoder", "metadata_encoder", "token_pos"))
                   for n in trained)
    a, b = tiny_denoiser.batch(model.config, seed=0), tiny_denoiser.batch(model.config, seed=1)
    level = torch.zeros(2)
    ca = model.condition(a["context"], a["actions"], a["metadata"], level)
    cb = model.condition(b["context"], b["actions"], b["metadata"], level)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        assert torch.equal(model.velocity(a["target"], t, ca), model.velocity(a["target"], t, cb))
    tiny_denoiser.check_shapes(model.config)


def test_conditioning_changes_output(tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config())
    with torch.no_grad():
        for p in model.parameters():  # make sure no zero-initialised layer hides an input
            p.add_(torch.randn_like(p) * 0.05)
    a = tiny_denoiser.batch(model.config, seed=0)
    t, level = torch.tensor([500, 500]), torch.zeros(2)
    ref = model.velocity(a["target"], t, model.condition(a["context"], a["actions"],
                                                         a["metadata"], level))
    for key in ("context", "actions", "metadata"):
        b = dict(a)
        b[key] = tiny_denoiser.batch(model.config, seed=1)[key]
        with torch.no_grad():
            out = model.velocity(a["target"], t, model.condition(b["context"], b["actions"],
                                                                 b["metadata"], level))
        assert not torch.allclose(out, ref), key


def test_condition_hands_the_backbone_a_contiguous_context(tiny_denoiser):
    """The dream passes a view of its growing latent history; the backbone gets the same
    values in a contiguous tensor (a view's strides made torch.compile recompile each step)."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config())
    a = tiny_denoiser.batch(model.config, seed=0)
    K = a["context"].shape[1]
    history = torch.cat([torch.randn_like(a["context"][:, :3]), a["context"]], 1)
    view = history[:, -K:]  # (B, K, C, h, w), batch stride of K + 3 frames
    assert not view.is_contiguous()
    cond = model.condition(view, a["actions"], a["metadata"], torch.zeros(2))
    assert cond.context.is_contiguous() and torch.equal(cond.context, a["context"])


def test_overfits_a_fixed_batch(tiny_denoiser):
    """150 steps: the v-loss falls at least 5x (about 100x on the development machine)."""
    first, last = tiny_denoiser.overfit(tiny_denoiser.config(), 150)
    assert last * 5 <= first, (first, last)


def test_folder_round_trip_is_exact(tmp_path, tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(frames_per_call=2)).eval()
    model.set_metadata_stats([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    folder = ModelFolder(tmp_path)
    folder.save_component("denoiser", model, model.config)
    loaded = Denoiser.from_folder(folder)
    assert loaded.config == model.config
    b = tiny_denoiser.batch(model.config)
    outs = [sample(m, b["context"], b["actions"], b["metadata"], 3,
                   torch.Generator().manual_seed(7)) for m in (model, loaded)]
    assert torch.equal(outs[0], outs[1])


@pytest.fixture
def base_unet(tmp_path):
    """A tiny local diffusers UNet folder standing in for a hub model (e.g. LCM Dreamshaper)."""
    torch.manual_seed(1)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
        cross_attention_dim=24, attention_head_dim=2, norm_num_groups=4,
    )
    unet.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_lora_on_a_diffusers_base_trains_only_adapters(tmp_path, base_unet, tiny_denoiser):
    base = BaseModel.find(base_unet)
    assert base.kind == "diffusers"
    config = base.apply_to(tiny_denoiser.config(frames_per_call=2))
    assert config.token_dim == 24  # the base's cross_attention_dim
    torch.manual_seed(0)
    model = Denoiser(config)
    fresh = model.load_base(base)
    assert {n.split(".")[0] for n in fresh} == {"conv_in", "conv_out", "class_embedding"}
    base_sd = load_file(base_unet / "diffusion_pytorch_model.safetensors")
    net_sd = model.backbone.net.state_dict()
    k = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert torch.equal(net_sd[k], base_sd[k])

    model.add_lora(4)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    for n in trained:
        ok = ("lora_" in n or ".conv_in." in n or ".conv_out." in n or ".class_embedding." in n
              or n.startswith(("action_encoder", "metadata_encoder", "token_pos")))
        assert ok, n
    assert any("lora_A" in n for n in trained) and any(".conv_in." in n for n in trained)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.1)
    batch = tiny_denoiser.batch(config)
    for step in range(3):
        loss, _ = model(batch, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p)
        assert changed == (n in trained), n

    # the merged save is one plain file that loads into a Denoiser without peft
    folder = ModelFolder(tmp_path / "wm")
    folder.save_component("denoiser", model.merged(), config)
    keys = load_file(tmp_path / "wm" / "denoiser.safetensors").keys()
    assert not any("lora" in k or "base_layer" in k for k in keys)
    model.eval()
    out = sample(model, batch["context"], batch["actions"], batch["metadata"], 2,
                 torch.Generator().manual_seed(3))
    code = (
        "import sys, torch; sys.modules['peft'] = None\n"
        "from neuralgym.model_folder import ModelFolder\n"
        "from neuralgym.models.denoiser import Denoiser\n"
        "from neuralgym.sampler import sample\n"
        f"m = Denoiser.from_folder(ModelFolder({str(tmp_path / 'wm')!r}))\n"
        f"b = torch.load({str(tmp_path / 'b.pt')!r})\n"
        "out = sample(m, b['context'], b['actions'], b['metadata'], 2,"
        " torch.Generator().manual_seed(3))\n"
        f"torch.save(out, {str(tmp_path / 'out.pt')!r})\n"
    )
    torch.save(batch, tmp_path / "b.pt")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    plain = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(plain, out, atol=1e-4, rtol=1e-4)


def test_world_model_base_keeps_architecture(tmp_path, tiny_denoiser):
    torch.manual_seed(0)
    stage1 = Denoiser(tiny_denoiser.config(stage="lora", metadata_dim=0, block_out_channels=(8, 8)))
    folder = ModelFolder(tmp_path)
    folder.save_component("denoiser_lora", stage1, stage1.config)
    base = BaseModel.find(tmp_path)
    assert (base.kind, base.component) == ("world-model", "denoiser_lora")
    config = base.apply_to(tiny_denoiser.config(stage="cond", metadata_dim=3))
    assert config.block_out_channels == (8, 8) and config.stage == "cond"
    assert config.metadata_dim == 3
    model = Denoiser(config)
    fresh = model.load_base(base)
    assert "metadata_encoder.mlp.0.weight" in fresh and "backbone.net.conv_in.weight" not in fresh
    sd1, sd2 = stage1.state_dict(), model.state_dict()
    assert torch.equal(sd1["backbone.net.conv_in.weight"], sd2["backbone.net.conv_in.weight"])
    with pytest.raises(ValueError, match="unet"):
        base.apply_to(replace(config, backbone="dit"))


def test_metadata_maps_shapes_and_refusals(tiny_denoiser):
    config = tiny_denoiser.config(metadata_maps=True, frames_per_call=2)
    tiny_denoiser.check_shapes(config)
    conv_in = Denoiser(config).backbone.net.conv_in
    # C*(K+T) latent channels + 2 coordinates + T*M metadata values
    assert conv_in.in_channels == 4 * (3 + 2) + 2 + 2 * 3
    with pytest.raises(ValueError, match="metadata_maps"):
        tiny_denoiser.config(metadata_maps=True, metadata_dim=0)
    with pytest.raises(ValueError, match="metadata_maps"):
        tiny_denoiser.config(metadata_maps=True, backbone="dit")


def widened(tiny_denoiser, maps_before: bool, **maps):
    """(a trained-looking tiny denoiser, its `with_input_maps(**maps)` copy, a batch, the copy's
    Condition of it), having checked that the copy predicts what the original does and that
    its new input weights get gradients (the maps reach the network)."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(metadata_maps=maps_before))
    model.set_metadata_stats([5.0] * 3, [10.0] * 3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    wide = model.with_input_maps(**maps)
    a = tiny_denoiser.batch(model.config, seed=0)
    t, level = torch.tensor([500, 500]), torch.zeros(2)
    with torch.no_grad():
        ref = model.velocity(a["target"], t, model.condition(a["context"], a["actions"],
                                                             a["metadata"], level))
        cond = wide.condition(a["context"], a["actions"], a["metadata"], level)
        torch.testing.assert_close(wide.velocity(a["target"], t, cond), ref)
    loss, _ = wide(a, generator=torch.Generator().manual_seed(0))
    loss.backward()
    added = (wide.backbone.net.conv_in.in_channels - model.backbone.net.conv_in.in_channels)
    grad = wide.backbone.net.conv_in.weight.grad
    assert added > 0 and grad is not None and grad[:, -added:].abs().sum() > 0
    return model, wide, a, cond


def test_with_input_maps_adds_metadata_maps_where_it_was(tiny_denoiser):
    model, wide, _, cond = widened(tiny_denoiser, maps_before=False, metadata_maps=True)
    assert wide.config.metadata_maps and not model.config.metadata_maps
    assert cond.maps is not None and cond.maps.shape == (2, 3)
    with pytest.raises(ValueError, match="already"):
        wide.with_input_maps(metadata_maps=True)


def test_metadata_maps_give_the_unet_coordinates_and_metadata(tiny_denoiser):
    """The UNet's input: the latents, then y and x in [-1, 1] over the latent (zero in the
    padding), then each normalised metadata value of the target frame, constant."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(metadata_maps=True))
    model.set_metadata_stats([5.0] * 3, [10.0] * 3)
    seen = []
    model.backbone.net.conv_in.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    a = tiny_denoiser.batch(model.config, seed=0)
    with torch.no_grad():
        model.velocity(a["target"], torch.tensor([500, 500]), model.condition(
            a["context"], a["actions"], a["metadata"], torch.zeros(2)))
    x = seen[0]  # (B, C*(K+T) + 2 + M, h', w'), the latents padded to (10, 14)
    n = 4 * (3 + 1)
    H, W = 9, 14
    assert x.shape == (2, n + 2 + 3, 10, 14)
    torch.testing.assert_close(x[0, n, :H, 0], torch.linspace(-1, 1, H))
    torch.testing.assert_close(x[1, n + 1, 0, :W], torch.linspace(-1, 1, W))
    assert torch.all(x[:, n:n + 2, H:] == 0)
    want = (a["metadata"][:, -1] - 5.0) / 10.0  # (B, M)
    torch.testing.assert_close(x[:, n + 2:], want[:, :, None, None].expand(-1, -1, 10, 14))


def test_coordinate_cache_follows_the_model_to_a_new_dtype(tiny_denoiser):
    """The UNet caches its coordinate channels per shape, device and dtype; moving the model
    (here to float64) drops them, and the next call builds them in the new dtype."""
    model = Denoiser(tiny_denoiser.config(metadata_maps=True)).eval()
    a = tiny_denoiser.batch(model.config, seed=0)

    def velocity() -> torch.Tensor:
        with torch.no_grad():
            return model.velocity(a["target"], torch.tensor([500, 500]), model.condition(
                a["context"], a["actions"], a["metadata"], torch.zeros(2)))

    velocity()
    assert {k[-1] for k in model.backbone._coords} == {torch.float32}
    model.double()
    assert model.backbone._coords == {}
    a = {k: v.double() if v.is_floating_point() else v for k, v in a.items()}
    assert torch.isfinite(velocity()).all()
    assert {k[-1] for k in model.backbone._coords} == {torch.float64}


def test_folder_round_trip_with_metadata_maps(tmp_path, tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config()).with_input_maps(metadata_maps=True).eval()
    folder = ModelFolder(tmp_path)
    folder.save_component("denoiser", model, model.config)
    again = Denoiser.from_folder(folder)
    assert again.config.metadata_maps
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items(),
                                strict=True):
        assert k == k2 and torch.equal(v, v2)


POSITIONS = ((0, "y", -2.0), (2, "x", 3.0))  # metadata 0 a row, metadata 2 a column


def test_position_maps_shapes_and_refusals(tiny_denoiser):
    config = tiny_denoiser.config(position_maps=[[0, "y", -2], [2, "x", 3]], frames_per_call=2)
    assert config.position_maps == POSITIONS  # JSON lists become (int, str, float) tuples
    tiny_denoiser.check_shapes(config)
    # C*(K+T) latent channels + P stripes per target frame
    assert Denoiser(config).backbone.net.conv_in.in_channels == 4 * (3 + 2) + 2 * 2
    both = tiny_denoiser.config(position_maps=POSITIONS, metadata_maps=True)
    assert Denoiser(both).backbone.net.conv_in.in_channels == 4 * 4 + 2 + 3 + 2
    for bad in (dict(metadata_dim=0), dict(backbone="dit")):
        with pytest.raises(ValueError, match="position_maps"):
            tiny_denoiser.config(position_maps=POSITIONS, **bad)
    for bad_maps in (((3, "y", 0.0),), ((0, "z", 0.0),)):
        with pytest.raises(ValueError, match="axis"):
            tiny_denoiser.config(position_maps=bad_maps)


def test_position_maps_are_stripes_at_the_pixel_of_each_variable(tiny_denoiser):
    """After the latents: per position a Gaussian across its axis, peaking on the latent
    pixel that holds frame pixel value + offset (latent_stride 4: pixels 4i .. 4i+3), the
    same along the other axis."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(position_maps=POSITIONS, latent_stride=4))
    seen = []
    model.backbone.net.conv_in.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    a = tiny_denoiser.batch(model.config, seed=0)
    a["metadata"][:, -1, 0] = torch.tensor([22.0, 7.0])  # rows: pixel 20 (latent 5), 5 (1)
    a["metadata"][:, -1, 2] = torch.tensor([10.0, 38.0])  # columns: pixel 13 (3), 41 (10)
    with torch.no_grad():
        model.velocity(a["target"], torch.tensor([500, 500]), model.condition(
            a["context"], a["actions"], a["metadata"], torch.zeros(2)))
    x = seen[0]  # (B, C*(K+T) + P, h', w'), the latents padded to (10, 14)
    n = 4 * (3 + 1)
    assert x.shape == (2, n + 2, 10, 14)
    rows, cols = x[:, n], x[:, n + 1]  # (B, 10, 14)
    assert rows[:, :, 0].argmax(1).tolist() == [5, 1]
    assert cols[:, 0].argmax(1).tolist() == [3, 10]
    torch.testing.assert_close(rows, rows[:, :, :1].expand(-1, -1, 14))
    torch.testing.assert_close(cols, cols[:, :1].expand(-1, 10, -1))
    # pixel 20 is half a pixel above latent row 5's centre (21.5): exp(-0.5 (1.5 / 2)^2)
    torch.testing.assert_close(rows[0, 5, 0], torch.tensor(0.7548396), rtol=1e-5, atol=1e-6)
    assert rows.max() <= 1 and rows[0, 0, 0] < 1e-6  # far away: nothing


def test_with_input_maps_adds_positions_where_it_was_and_they_reach_the_network(tiny_denoiser):
    model, wide, a, cond = widened(tiny_denoiser, maps_before=True, position_maps=POSITIONS,
                                   latent_stride=2)
    assert wide.config.position_maps == POSITIONS and wide.config.latent_stride == 2
    assert wide.config.metadata_maps and not model.config.position_maps
    assert cond.positions is not None and cond.positions.shape == (2, 2)
    torch.testing.assert_close(cond.positions[:, 0], a["metadata"][:, -1, 0] - 2.0)
    assert wide.backbone.net.conv_in.in_channels == model.backbone.net.conv_in.in_channels + 2
    with pytest.raises(ValueError, match="already"):
        wide.with_input_maps(position_maps=((1, "x", 0.0),))
    with pytest.raises(ValueError, match="before position"):
        Denoiser(tiny_denoiser.config(position_maps=POSITIONS)).with_input_maps(
            metadata_maps=True)


def test_folder_round_trip_with_position_maps(tmp_path, tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(position_maps=POSITIONS)).eval()
    folder = ModelFolder(tmp_path)
    folder.save_component("denoiser", model, model.config)
    again = Denoiser.from_folder(folder)
    assert again.config.position_maps == POSITIONS
    a = tiny_denoiser.batch(model.config, seed=1)
    t, level = torch.tensor([100, 900]), torch.zeros(2)
    with torch.no_grad():
        torch.testing.assert_close(
            again.velocity(a["target"], t, again.condition(a["context"], a["actions"],
                                                           a["metadata"], level)),
            model.velocity(a["target"], t, model.condition(a["context"], a["actions"],
                                                           a["metadata"], level)))


def test_context_drop_trains_on_no_context_and_the_sampler_dreams_so(tiny_denoiser):
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config(context_drop=1.0))
    model.set_metadata_stats([5.0] * 3, [10.0] * 3)
    batch = tiny_denoiser.batch(model.config, B=4)
    _, _, _, context, level = model.noise_batch(batch, torch.Generator().manual_seed(0))
    assert torch.all(context == 0) and torch.all(level == NO_CONTEXT)
    half = Denoiser(tiny_denoiser.config(context_drop=0.5))
    _, _, _, context, level = half.noise_batch(tiny_denoiser.batch(half.config, B=64),
                                               torch.Generator().manual_seed(0))
    dropped = level == NO_CONTEXT
    assert 10 < int(dropped.sum()) < 54
    assert torch.all(context[dropped] == 0) and torch.all(context[~dropped] != 0)
    # with no context, the context's content does not matter; with it, it does
    a, b = tiny_denoiser.batch(model.config, seed=0), tiny_denoiser.batch(model.config, seed=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)

    def dream(ctx, noise):
        return sample(model, ctx, a["actions"], a["metadata"], 2,
                      torch.Generator().manual_seed(0), context_noise=noise)

    assert torch.equal(dream(a["context"], NO_CONTEXT), dream(b["context"], NO_CONTEXT))
    assert not torch.equal(dream(a["context"], 0.0), dream(b["context"], 0.0))
    with pytest.raises(ValueError, match="-1 for none"):
        dream(a["context"], -0.5)
    plain = Denoiser(tiny_denoiser.config())
    with pytest.raises(ValueError, match="context dropout"):
        sample(plain, a["context"], a["actions"], a["metadata"], 1,
               torch.Generator().manual_seed(0), context_noise=NO_CONTEXT)
    with pytest.raises(ValueError, match="context_drop"):
        tiny_denoiser.config(context_drop=1.5)


def test_window_weights_weigh_each_window_s_loss(tiny_denoiser):
    """batch["weight"] (the importance weights of a boosted draw) weighs each window's loss:
    all ones is the plain loss, and the two one-window losses add up to it."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config())
    batch = tiny_denoiser.batch(model.config)  # two windows

    def loss(weight: list[float] | None) -> float:
        b = dict(batch) if weight is None else {**batch, "weight": torch.tensor(weight)}
        with torch.no_grad():
            return model(b, generator=torch.Generator().manual_seed(0))[0].item()

    plain = loss(None)
    assert loss([1.0, 1.0]) == pytest.approx(plain, rel=1e-5)
    first, second = loss([2.0, 0.0]), loss([0.0, 2.0])
    assert first + second == pytest.approx(2 * plain, rel=1e-5)
    assert first != pytest.approx(second, rel=1e-3)  # the windows' losses differ


def test_with_metadata_reads_new_variables_with_zero_weights(tiny_denoiser):
    """A denoiser given a new metadata variable between its old ones predicts what it did, for
    any value of the new one, keeps each old variable's normalisation at its new index, and
    its new input column learns (gets a gradient)."""
    torch.manual_seed(0)
    model = Denoiser(tiny_denoiser.config())  # metadata_dim 3
    model.set_metadata_stats([5.0, 6.0, 7.0], [10.0, 11.0, 12.0])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    wide = model.with_metadata([0, None, 1, 2, None])
    assert wide.config.metadata_dim == 5
    torch.testing.assert_close(wide.metadata_mean, torch.tensor([5.0, 0.0, 6.0, 7.0, 0.0]))
    torch.testing.assert_close(wide.metadata_std, torch.tensor([10.0, 1.0, 11.0, 12.0, 1.0]))
    a = tiny_denoiser.batch(model.config, seed=0)
    m = a["metadata"]  # (B, T, 3)
    new = torch.stack([m[..., 0], torch.randn_like(m[..., 0]) * 50, m[..., 1], m[..., 2],
                       torch.full_like(m[..., 0], 63.0)], -1)  # (B, T, 5)
    t, level = torch.tensor([500, 500]), torch.zeros(2)
    with torch.no_grad():
        ref = model.velocity(a["target"], t, model.condition(a["context"], a["actions"], m,
                                                             level))
        got = wide.velocity(a["target"], t, wide.condition(a["context"], a["actions"], new,
                                                           level))
    torch.testing.assert_close(got, ref)
    loss, _ = wide({**a, "metadata": new}, generator=torch.Generator().manual_seed(0))
    loss.backward()
    grad = wide.metadata_encoder.mlp[0].weight.grad  # (D, 5)
    assert grad is not None and grad[:, 1].abs().sum() > 0 and grad[:, 4].abs().sum() > 0
    with pytest.raises(ValueError, match="each of the 3 old variables"):
        model.with_metadata([0, 1, None])
    with pytest.raises(ValueError, match="each of the 3 old variables"):
        model.with_metadata([0, 1, 1, 2])
    with pytest.raises(ValueError, match="reads no metadata"):
        Denoiser(tiny_denoiser.config(metadata_dim=0)).with_metadata([None])
