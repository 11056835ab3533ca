"""The frame VAE with tiny configs: shapes, padding, normalisation, loss weighting, overfit,
save/load through a world-model folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralgym.model_folder import ModelFolder, config_from_dict
from neuralgym.models.vae import FrameVAE, VAEConfig, reconstruction_loss


def tiny(h: int, w: int, **kw) -> VAEConfig:
    """4x down (3 levels), 4 latent channels, 2-4 feature channels."""
    defaults = dict(block_out_channels=(2, 4, 4), latent_channels=4, norm_num_groups=2)
    return VAEConfig(frame_height=h, frame_width=w, **{**defaults, **kw})


def breakout_like(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Black frames with a grey wall, a coloured band and a small bright ball."""
    rng = np.random.default_rng(seed)
    f = np.zeros((n, h, w, 3), np.uint8)
    f[:, : h // 8] = (142, 142, 142)
    f[:, h // 4 : h // 4 + 3] = (200, 72, 72)
    for i in range(n):
        y, x = rng.integers(h // 2, h - 3), rng.integers(0, w - 2)
        f[i, y : y + 2, x : x + 2] = 255
    return torch.from_numpy(f)


@pytest.mark.parametrize("hw, latent_hw", [((210, 160), (54, 40)), ((224, 320), (56, 80))])
def test_padding_shapes(hw: tuple[int, int], latent_hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    cfg = tiny(*hw)
    assert cfg.latent_hw == latent_hw
    vae = FrameVAE(cfg).eval()
    for b in (1, 3):
        frames = breakout_like(b, *hw)
        z = vae.encode(frames)
        assert z.shape == (b, 4, *latent_hw) and z.dtype == torch.float32
        out = vae.decode(z)
        assert out.shape == (b, *hw, 3) and out.dtype == torch.uint8
        loss, logs = vae({"frames": frames})
        assert loss.ndim == 0 and np.isfinite(logs["mse"])
    assert vae.encode(breakout_like(2, *hw).numpy()).shape == (2, 4, *latent_hw)  # numpy in


def test_default_config_is_the_probe_vae() -> None:
    cfg = VAEConfig(210, 160)
    assert cfg.latent_shape == (16, 54, 40) and cfg.padded_hw == (216, 160)
    assert sum(p.numel() for p in FrameVAE(cfg).parameters()) == 2_612_211


def test_config_validation_and_json_round_trip() -> None:
    with pytest.raises(ValueError, match="norm_num_groups"):
        VAEConfig(32, 32, block_out_channels=(3, 6), norm_num_groups=2)
    with pytest.raises(ValueError, match="pad_multiple"):
        VAEConfig(32, 32, block_out_channels=(2, 2, 2, 2), norm_num_groups=2, pad_multiple=4)
    with pytest.raises(ValueError, match="latent_shift"):
        tiny(16, 16, latent_shift=[0.0, 1.0])
    import json
    from dataclasses import asdict

    cfg = tiny(16, 24, latent_shift=[0.1, 0.2, 0.3, 0.4], latent_scale=2.0)
    back = config_from_dict(VAEConfig, json.loads(json.dumps(asdict(cfg))))
    assert back == cfg and back.block_out_channels == (2, 4, 4)


def test_cropping_ignores_the_padding() -> None:
    """Pixels of the padded border never reach the output or the loss."""
    torch.manual_seed(0)
    vae = FrameVAE(tiny(20, 16)).eval()  # padded to 24x16
    x = vae._to_input(breakout_like(1, 20, 16))
    assert x.shape == (1, 3, 24, 16) and torch.all(x[:, :, 20:] == -1.0)
    assert vae.decode(vae.encode(breakout_like(1, 20, 16))).shape == (1, 20, 16, 3)


def test_normalisation_gives_zero_mean_unit_std() -> None:
    torch.manual_seed(0)
    vae = FrameVAE(tiny(32, 32)).eval()
    frames = breakout_like(16, 32, 32)
    shift, scale = vae.fit_latent_normalization(frames, batch_size=5)
    assert len(shift) == len(scale) == 4 and vae.config.latent_shift == shift
    z = vae.encode(frames)  # (16, 4, 8, 8)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)
    raw = vae.encode(frames, normalize=False)
    assert not torch.allclose(raw.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-3)
    # decode undoes the normalisation: the frames of the raw latents, up to float rounding
    diff = vae.decode(z).int() - vae.decode(raw, normalized=False).int()
    assert diff.abs().max() <= 1 and (diff != 0).float().mean() < 0.01
    # one value for all channels
    vae.fit_latent_normalization(frames, per_channel=False)
    z = vae.encode(frames)
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std(unbiased=False)) - 1) < 1e-3


def test_bright_pixels_weigh_more() -> None:
    """A missed 2x2 ball costs bright_weight times more than without weighting."""
    frames = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    frames[0, 8:10, 5:7] = 255
    black = -torch.ones(1, 3, 16, 16)  # a reconstruction without the ball
    weighted = reconstruction_loss(black, frames, bright_weight=21.0)
    plain = reconstruction_loss(black, frames, bright_weight=1.0)
    assert plain > 0 and torch.isclose(weighted, 21 * plain)
    # through the model: same weights and noise, only bright_weight differs
    torch.manual_seed(0)
    a = FrameVAE(tiny(16, 16, bright_weight=21.0))
    b = FrameVAE(tiny(16, 16, bright_weight=1.0))
    b.load_state_dict(a.state_dict())
    noise = torch.randn(1, 4, 4, 4)
    assert a({"frames": frames, "noise": noise})[1]["recon"] > \
        b({"frames": frames, "noise": noise})[1]["recon"]


def test_sampling_is_seeded() -> None:
    torch.manual_seed(0)
    vae = FrameVAE(tiny(16, 16)).eval()
    frames = breakout_like(2, 16, 16)
    z1 = vae.encode(frames, sample=True, generator=torch.Generator().manual_seed(1))
    z2 = vae.encode(frames, sample=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z1, z2) and not torch.equal(z1, vae.encode(frames))
    noise = torch.randn(2, 4, 4, 4)
    assert vae({"frames": frames, "noise": noise})[0] == vae({"frames": frames, "noise": noise})[0]


def test_bf16_autocast() -> None:
    """encode/decode under bf16 autocast (the CPU stands in for CUDA): float32 and uint8 out."""
    torch.manual_seed(0)
    vae = FrameVAE(tiny(24, 16)).eval()
    frames = breakout_like(2, 24, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = vae.encode(frames)
        out = vae.decode(z)
        loss, _ = vae({"frames": frames})
    assert z.dtype == torch.float32 and out.dtype == torch.uint8 and torch.isfinite(loss)


def test_overfits_a_fixed_batch() -> None:
    """200 Adam steps on 4 fixed 16x16 frames: the loss falls at least 10x (~170x seen)."""
    torch.manual_seed(0)
    vae = FrameVAE(tiny(16, 16, block_out_channels=(8, 8), latent_channels=4))  # 2x down
    frames = breakout_like(4, 16, 16)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    first = None
    for _ in range(200):
        loss, logs = vae({"frames": frames})
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else logs["loss"]
    assert logs["loss"] < first / 10, (first, logs["loss"])


def test_folder_round_trip_is_bit_exact(tmp_path) -> None:
    torch.manual_seed(0)
    vae = FrameVAE(tiny(24, 16)).eval()
    frames = breakout_like(3, 24, 16)
    vae.fit_latent_normalization(frames)
    ModelFolder(tmp_path).save_component("vae", vae, vae.config)
    back = FrameVAE.from_folder(tmp_path)
    assert back.config == vae.config
    z = vae.encode(frames)
    assert torch.equal(back.encode(frames), z)
    assert torch.equal(back.decode(z), vae.decode(z))
    for k, v in vae.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
