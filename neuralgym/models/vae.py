"""The frame VAE: native-resolution RGB frames <-> normalised latents (diffusers AutoencoderKL).

Frames are uint8 (B, H, W, 3) at the game's native resolution. They are scaled to [-1, 1],
padded at the bottom and right with black up to a multiple of `pad_multiple`, encoded to
(B, C, h, w) with h = H_pad / f, w = W_pad / f (f = 2 ** (len(block_out_channels) - 1)), and
decoded back and cropped to (H, W). For Breakout (210x160) with the defaults: padded 216x160,
latents 16x54x40.

Latents leave `encode` normalised, `(mu - latent_shift) * latent_scale`, per channel, so a
diffusion model sees mean 0 / std 1; `decode` undoes it. Shift and scale live in the config
(config.json of the world-model folder), fitted on training frames by
`fit_latent_normalization`.

Defaults follow what a first GPU probe found (DESIGN.md): 4x down, 16 latent channels, no
mid-block attention, small full-resolution layers (32 channels), weight 21 on non-black
pixels (balls and bullets are a few bright pixels on black), a tiny KL term.

Loss: mean over pixels and channels of w * (x_hat - x)^2 in [-1, 1] units, w = bright_weight
where the target pixel is not black (any channel > 0) and 1 elsewhere, on the native
(cropped) frame, plus kl_weight * KL / (3 H W) (the KL summed over latent elements per frame,
divided by the number of pixel values: the ratio of the latent-diffusion autoencoders, whose
losses are both sums). Training decodes a posterior sample; `encode` returns the posterior
mean unless asked to sample.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import Tensor, nn

from neuralgym.model_folder import ModelFolder


@dataclass
class VAEConfig:
    frame_height: int  # native H of the game's frames
    frame_width: int  # native W
    block_out_channels: tuple[int, ...] = (32, 64, 128)  # one block per level; 3 => 4x down
    layers_per_block: int = 1  # resnets per encoder block (the decoder has one more)
    latent_channels: int = 16
    norm_num_groups: int = 32  # GroupNorm groups; must divide every block's channels
    mid_block_add_attention: bool = False
    pad_multiple: int = 8  # frames are padded with black to a multiple of this, then cropped
    bright_weight: float = 21.0  # loss weight on non-black target pixels (1 on black ones)
    kl_weight: float = 1e-6  # weight of KL / (3 H W)
    latent_shift: float | list[float] = 0.0  # per channel (or one value): mean of posterior mu
    latent_scale: float | list[float] = 1.0  # per channel (or one value): 1 / std of mu

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"norm_num_groups={self.norm_num_groups} must divide every entry "
                             f"of block_out_channels={self.block_out_channels}")
        if self.pad_multiple % self.downsample:
            raise ValueError(f"pad_multiple={self.pad_multiple} must be a multiple of the "
                             f"downsampling factor {self.downsample}")
        for name in ("latent_shift", "latent_scale"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if len(value) != self.latent_channels:
                    raise ValueError(f"{name} has {len(value)} values, expected one or "
                                     f"latent_channels={self.latent_channels}")
                setattr(self, name, [float(v) for v in value])

    @property
    def downsample(self) -> int:
        """Spatial factor from frame to latent."""
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def padded_hw(self) -> tuple[int, int]:
        p = self.pad_multiple
        return math.ceil(self.frame_height / p) * p, math.ceil(self.frame_width / p) * p

    @property
    def latent_hw(self) -> tuple[int, int]:
        h, w = self.padded_hw
        return h // self.downsample, w // self.downsample

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, *self.latent_hw)


def bright_weights(frames: Tensor, bright_weight: float) -> Tensor:
    """Per-pixel loss weights (B, H, W): `bright_weight` where a pixel is not black, else 1."""
    bright = (frames > 0).any(dim=-1)  # (B, H, W) bool
    return 1.0 + (bright_weight - 1.0) * bright.float()


def reconstruction_loss(recon: Tensor, frames: Tensor, bright_weight: float) -> Tensor:
    """Bright-weighted MSE in [-1, 1] units; recon (B, 3, H, W) float, frames (B, H, W, 3) uint8."""
    target = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W)
    w = bright_weights(frames, bright_weight)[:, None]  # (B, 1, H, W)
    return (w * (recon.float() - target) ** 2).mean()


_D = TypeVar("_D", bound="LatentDecoder")


class LatentDecoder(nn.Module):
    """What turns normalised latents into frames: `decode`, on top of a subclass's
    `_decode_raw` (unnormalised latents -> cropped float frames), with the latent
    normalisation of `config` in two non-persistent buffers."""

    config: VAEConfig
    component = "vae"  # its name in a world-model folder

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        # Normalisation comes from the config, not the weights file (not persistent).
        self.register_buffer("latent_shift", torch.zeros(1, config.latent_channels, 1, 1),
                             persistent=False)
        self.register_buffer("latent_scale", torch.ones(1, config.latent_channels, 1, 1),
                             persistent=False)

    @classmethod
    def from_folder(cls: type[_D], root: str | os.PathLike) -> _D:
        """The class's component of a world-model folder, in eval mode on the CPU."""
        folder = ModelFolder(root)
        model = cls(folder.component_config(cls.component, VAEConfig))
        folder.load_component(cls.component, model)
        return model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _decode_raw(self, z: Tensor) -> Tensor:
        """Unnormalised latents (B, C, h, w) -> float (B, 3, H, W) in about [-1, 1], cropped."""
        raise NotImplementedError

    @torch.no_grad()
    def decode(self, latents: Tensor, normalized: bool = True) -> Tensor:
        """(B, C, h, w) latents (normalised, as `encode` gives them) -> uint8 (B, H, W, 3)."""
        z = latents.to(self.device, torch.float32)  # (B, C, h, w)
        if tuple(z.shape[1:]) != self.config.latent_shape:
            raise ValueError(f"latents must be (B, {', '.join(map(str, self.config.latent_shape))})"
                             f", got {tuple(latents.shape)}")
        if normalized:
            z = z / self.latent_scale.float() + self.latent_shift.float()
        x = self._decode_raw(z.to(self.dtype))  # (B, 3, H, W)
        x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        return x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, 3)

    def _set_normalization(self, shift: float | list[float], scale: float | list[float]) -> None:
        c = self.config.latent_channels
        for buf, value in ((self.latent_shift, shift), (self.latent_scale, scale)):
            t = torch.as_tensor(value, dtype=torch.float32).reshape(-1).expand(c)
            buf.copy_(t.reshape(1, c, 1, 1))


class FrameVAE(LatentDecoder):
    """AutoencoderKL on native-resolution frames, with padding and latent normalisation."""

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        n = len(config.block_out_channels)
        self.vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            latent_channels=config.latent_channels,
            norm_num_groups=config.norm_num_groups,
            mid_block_add_attention=config.mid_block_add_attention,
        )
        self._set_normalization(config.latent_shift, config.latent_scale)

    # -- pixels <-> network input -------------------------------------------------------------

    def _to_input(self, frames: Tensor | np.ndarray) -> Tensor:
        """uint8 (B, H, W, 3) -> padded float (B, 3, H_pad, W_pad) in [-1, 1], black padding."""
        if isinstance(frames, np.ndarray):  # copied: memmapped episodes are read-only
            frames = torch.from_numpy(np.array(frames))
        h, w = self.config.frame_height, self.config.frame_width
        if frames.dtype != torch.uint8 or frames.ndim != 4 or tuple(frames.shape[1:]) != (h, w, 3):
            raise ValueError(f"frames must be uint8 (B, {h}, {w}, 3), got "
                             f"{tuple(frames.shape)} {frames.dtype}")
        x = frames.to(self.device).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
        x = x.to(self.dtype) / 127.5 - 1.0
        hp, wp = self.config.padded_hw
        return F.pad(x, (0, wp - w, 0, hp - h), value=-1.0)  # (B, 3, H_pad, W_pad)

    def _posterior(self, x: Tensor) -> DiagonalGaussianDistribution:
        moments = self.vae.encode(x).latent_dist.parameters  # (B, 2C, h, w)
        return DiagonalGaussianDistribution(moments.float())

    def _decode_raw(self, z: Tensor) -> Tensor:
        """Unnormalised latents (B, C, h, w) -> float (B, 3, H, W) in about [-1, 1], cropped."""
        x = self.vae.decode(z).sample  # (B, 3, H_pad, W_pad)
        return x[:, :, : self.config.frame_height, : self.config.frame_width].float()

    # -- training -----------------------------------------------------------------------------

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """batch["frames"]: (B, H, W, 3) uint8; optional batch["noise"]: (B, C, h, w) standard
        normal noise for the posterior sample (the training script draws it from a seeded
        generator so a resumed run is exact); without it, torch's global generator is used."""
        frames = batch["frames"].to(self.device)  # (B, H, W, 3) uint8
        posterior = self._posterior(self._to_input(frames))  # mean, std: (B, C, h, w)
        noise = batch.get("noise")
        if noise is None:
            noise = torch.randn_like(posterior.mean)
        z = posterior.mean + posterior.std * noise.to(posterior.mean)  # (B, C, h, w)
        recon = self._decode_raw(z)  # (B, 3, H, W)
        rec = reconstruction_loss(recon, frames, self.config.bright_weight)
        kl = posterior.kl().mean() / (3 * self.config.frame_height * self.config.frame_width)
        loss = rec + self.config.kl_weight * kl
        with torch.no_grad():
            target = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
            mse = ((recon.clamp(-1, 1) - target) ** 2).mean() * 127.5**2
        logs = {"loss": loss.item(), "recon": rec.item(), "kl": kl.item(), "mse": mse.item()}
        return loss, logs

    # -- inference ----------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, frames: Tensor | np.ndarray, sample: bool = False,
               generator: torch.Generator | None = None, normalize: bool = True) -> Tensor:
        """uint8 (B, H, W, 3) -> float32 (B, C, h, w) latents on the model's device, normalised
        unless `normalize=False`; the posterior mean unless `sample`."""
        posterior = self._posterior(self._to_input(frames))
        if sample:
            eps = torch.randn(posterior.mean.shape, generator=generator,
                              device=generator.device if generator is not None else self.device)
            z = posterior.mean + posterior.std * eps.to(posterior.mean)  # (B, C, h, w)
        else:
            z = posterior.mean  # (B, C, h, w)
        if normalize:
            z = (z - self.latent_shift.float()) * self.latent_scale.float()
        return z.float()

    # -- latent normalisation -----------------------------------------------------------------

    @torch.no_grad()
    def fit_latent_normalization(self, frames: Tensor | np.ndarray, batch_size: int = 64,
                                 per_channel: bool = True) -> tuple[list[float], list[float]]:
        """Fit shift = mean and scale = 1 / std of the posterior means of `frames` (N, H, W, 3)
        uint8 over all latent positions, per channel (or one value for all); set them in the
        config and return them. Normalised latents of these frames then have mean 0, std 1."""
        c = self.config.latent_channels
        total = torch.zeros(c, dtype=torch.float64)
        squares = torch.zeros(c, dtype=torch.float64)
        count = 0
        for i in range(0, len(frames), batch_size):
            mu = self.encode(frames[i : i + batch_size], normalize=False).double().cpu()
            total += mu.sum(dim=(0, 2, 3))
            squares += (mu**2).sum(dim=(0, 2, 3))
            count += mu.shape[0] * mu.shape[2] * mu.shape[3]
        if count == 0:
            raise ValueError("fit_latent_normalization needs at least one frame")
        if not per_channel:
            total, squares, count = total.sum(), squares.sum(), count * c
        mean = total / count
        std = (squares / count - mean**2).clamp_min(0).sqrt().clamp_min(1e-6)
        shift = [float(v) for v in mean.reshape(-1).expand(c)]
        scale = [float(v) for v in (1.0 / std).reshape(-1).expand(c)]
        self.config = replace(self.config, latent_shift=shift, latent_scale=scale)
        self._set_normalization(shift, scale)
        return shift, scale

