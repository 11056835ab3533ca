"""Fixtures shared by the denoiser tests (UNet in test_denoiser.py, DiT in test_dit.py): tiny
configs, random batches, and the checks both backbones go through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neuralgym.models.denoiser import Denoiser, DenoiserConfig
from neuralgym.sampler import sample

C, H, W = 4, 9, 14  # non-square, not a multiple of the UNet's 2

CASES = [  # (frames_per_call, action_encoding, action_context, metadata_dim)
    (1, "embedding", "future", 3),
    (1, "onehot", "past+future", 0),
    (2, "embedding", "past+future", 3),
    (2, "onehot", "future", 0),
]


def tiny_config(**kw) -> DenoiserConfig:
    base = dict(
        latent_channels=C, latent_height=H, latent_width=W, context=3, frames_per_call=1,
        n_actions=5, metadata_dim=3, token_dim=16, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
        attention_head_dim=2, norm_num_groups=4, dit_layers=1, dit_heads=2, dit_head_dim=8,
    )
    base.update(kw)
    return DenoiserConfig(**base)


def make_batch(config: DenoiserConfig, B: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    K, T, M = config.context, config.frames_per_call, max(config.metadata_dim, 1)
    return {
        "context": torch.randn(B, K, C, H, W, generator=g),
        "target": torch.randn(B, T, C, H, W, generator=g),
        "actions": torch.randint(0, config.n_actions, (B, K - 1 + T), generator=g),
        "metadata": torch.randn(B, K + T, M, generator=g) * 10 + 5,
    }


def check_shapes(config: DenoiserConfig) -> None:
    torch.manual_seed(0)
    model = Denoiser(config)
    model.set_metadata_stats([5.0] * config.metadata_dim, [10.0] * config.metadata_dim)
    batch = make_batch(config)
    loss, logs = model(batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == () and torch.isfinite(loss) and set(logs) == {"loss"}
    loss.backward()
    level = torch.zeros(2)
    cond = model.condition(batch["context"], batch["actions"], batch["metadata"], level)
    n_tokens = 1 if config.stage == "lora" else config.n_tokens
    assert cond.tokens.shape == (2, n_tokens, config.token_dim)
    T = config.frames_per_call
    v = model.velocity(batch["target"], torch.tensor([10, 900]), cond)
    assert v.shape == (2, T, C, H, W) and v.dtype == torch.float32
    out = sample(model, batch["context"], batch["actions"], batch["metadata"], 2,
                 torch.Generator().manual_seed(0))
    assert out.shape == (2, T, C, H, W)


def overfit(config: DenoiserConfig, steps: int) -> tuple[float, float]:
    """First and last v-loss of `steps` AdamW steps on one batch with fixed noise."""
    torch.manual_seed(0)
    model = Denoiser(config)
    batch = make_batch(model.config, B=4)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        loss, _ = model(batch, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.fixture
def flush_denormals():
    """Tiny overfitted losses make denormal floats, which slow the CPU ~10x."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="session")
def tiny_denoiser() -> SimpleNamespace:
    """The helpers above: `.config(**overrides)` a tiny DenoiserConfig (UNet unless
    overridden), `.batch(config, B=2, seed=0)` a random training batch, `.check_shapes(config)`
    loss, conditioning, velocity and sampling shapes, `.overfit(config, steps)` the first and
    last v-loss on one fixed batch, `.chw` the latents' (C, H, W)."""
    return SimpleNamespace(config=tiny_config, batch=make_batch, check_shapes=check_shapes,
                           overfit=overfit, chw=(C, H, W))


@pytest.fixture(params=CASES, ids=lambda case: "-".join(map(str, case)))
def denoiser_case(request) -> tuple[int, str, str, int]:
    """(frames_per_call, action_encoding, action_context, metadata_dim), one case a test."""
    return request.param
