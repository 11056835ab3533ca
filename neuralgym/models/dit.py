"""The spatio-temporal DiT backbone of the denoiser (the second document's ST-DiT).

diffusers' `LatteTransformer3DModel`: the K context latents and the T noisy target latents
are cut into patches; spatial transformer blocks (self-attention within a frame, then
cross-attention to the action/metadata tokens) alternate with temporal blocks (self-attention
across the K + T frames at one patch position). Context frames enter clean (noise-augmented
only), the output is kept for the T target frames, so the loss covers only them (the
document's mask). The diffusion timestep modulates every block (adaLN-single); the context
noise level becomes one more cross-attention token.

Configured by `DenoiserConfig` (backbone="dit", dit_* fields); built by `Denoiser`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers import LatteTransformer3DModel
from diffusers.models.embeddings import TimestepEmbedding, Timesteps, get_2d_sincos_pos_embed
from torch import Tensor, nn


class SpatioTemporalDiT(nn.Module):
    """Latte transformer over [K context, T noisy] latents -> v of the T targets."""

    ADAPTED = ("pos_embed.proj", "proj_out", "caption_projection", "level_embedding")

    def __init__(self, channels: int, context: int, frames: int, token_dim: int, height: int,
                 width: int, patch_size: int = 2, layers: int = 4, heads: int = 4,
                 head_dim: int = 64, base_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.context, self.frames = context, frames
        kwargs: dict[str, Any] = dict(  # Latte-1's block settings
            num_attention_heads=heads, attention_head_dim=head_dim, num_layers=layers,
            patch_size=patch_size, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
            norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
            attention_bias=True,
        )
        kwargs.update(base_kwargs or {})
        inner = kwargs["num_attention_heads"] * kwargs["attention_head_dim"]
        p = self.patch = kwargs["patch_size"]
        hp, wp = -(-height // p), -(-width // p)  # patches per column / row after padding
        kwargs.update(
            in_channels=channels, out_channels=channels, caption_channels=token_dim,
            cross_attention_dim=inner, sample_size=hp * p, video_length=context + frames,
        )
        self.net = LatteTransformer3DModel(**kwargs)
        # sin-cos positions of the (possibly non-square) padded grid, so that Latte does not
        # recompute them on every call; non-persistent, as in diffusers
        pe = self.net.pos_embed
        pe.height, pe.width = hp, wp
        pe.pos_embed = get_2d_sincos_pos_embed(
            inner, (hp, wp), base_size=pe.base_size, interpolation_scale=pe.interpolation_scale,
            output_type="pt").float().unsqueeze(0)  # (1, hp*wp, inner)
        self.level_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.level_embedding = TimestepEmbedding(256, token_dim)

    def forward(self, noisy: Tensor, timestep: Tensor, context: Tensor, level: Tensor,
                tokens: Tensor) -> Tensor:
        """level (B,): the context noise level on the timestep scale; tokens (B, N, D)."""
        B, T, C, h, w = noisy.shape  # (B, T, C, h, w)
        K = context.shape[1]
        x = torch.cat([context, noisy], 1)  # (B, K+T, C, h, w)
        x = F.pad(x, (0, -w % self.patch, 0, -h % self.patch))  # (B, K+T, C, h', w')
        x = x.permute(0, 2, 1, 3, 4)  # (B, C, K+T, h', w')
        lev = self.level_embedding(self.level_proj(level).to(tokens.dtype))  # (B, D)
        enc = torch.cat([tokens, lev[:, None]], 1)  # (B, N+1, D)
        out = self.net(x, timestep=timestep, encoder_hidden_states=enc).sample  # (B,C,K+T,h',w')
        return out.permute(0, 2, 1, 3, 4)[:, K:, :, :h, :w]  # (B, T, C, h, w)
