"""Few-step sampling of a `Denoiser`, separate from it: the step count is an inference choice.

    latents = sample(denoiser, context, actions, metadata, steps=4, generator=g)

DDIM (eta 0, deterministic given the initial noise; eta > 0 gives NaN at the zero-SNR
first step in diffusers 0.42) with "trailing" timestep spacing on the
denoiser's training schedule (v-prediction, zero terminal SNR), so 1 step starts from pure
noise and predicts the latents directly and more steps refine them. All noise comes from
`generator`: the same generator state gives the same latents (Gymnasium's determinism).
The scheduler arithmetic runs in float32; the network runs in its own dtype (bf16 works,
by `.to(torch.bfloat16)` or under autocast).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler
from torch import Tensor

from neuralgym.models.denoiser import NO_CONTEXT, Denoiser


def make_scheduler(denoiser: Denoiser, steps: int) -> DDIMScheduler:
    """A DDIM scheduler on the denoiser's training schedule, set to `steps` trailing steps."""
    if not 1 <= steps <= denoiser.config.num_train_timesteps:
        raise ValueError(f"steps must be in 1..{denoiser.config.num_train_timesteps}, "
                         f"got {steps}")
    scheduler = DDIMScheduler.from_config(denoiser.config.scheduler_config(),
                                          timestep_spacing="trailing", set_alpha_to_one=True)
    scheduler.set_timesteps(steps)
    return scheduler


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    context: Tensor,  # (B, K, C, h, w) latents Z_{t-K+1} .. Z_t
    actions: Tensor,  # (B, K-1+T) int64 a_{t-K+1} .. a_{t+T-1} (or just the last A used)
    metadata: Tensor | None,  # (B, K+T, M) raw (or (B, T, M)): the last T rows, m_{t+1..t+T}
    steps: int,
    generator: torch.Generator,
    context_noise: float = 0.0,
) -> Tensor:  # (B, T, C, h, w) float32 latents Z_{t+1} .. Z_{t+T}
    """Generate the T latents after `context` with `steps` denoiser calls.

    `context_noise` > 0 noises the context at that level (as in training), drawn from
    `generator`; 0 (the default) gives the network the clean context at level 0; NO_CONTEXT
    (-1) gives it none, as a denoiser trained with `context_drop` saw (the frame made from
    the actions and metadata alone).
    """
    config = denoiser.config
    device = context.device
    B, _, C, h, w = context.shape
    scheduler = make_scheduler(denoiser, steps)

    def noise(shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=generator, device=generator.device).to(device)

    x = noise((B, config.frames_per_call, C, h, w)) * scheduler.init_noise_sigma
    level = torch.full((B,), float(context_noise), device=device)
    if context_noise == NO_CONTEXT:
        if not config.context_drop:
            raise ValueError("context noise -1 (no context) needs a denoiser trained with "
                             "context dropout (train_denoiser.py --context-drop)")
        context = torch.zeros_like(context)
    elif context_noise < 0:
        raise ValueError(f"context noise must be >= 0, or -1 for none, got {context_noise}")
    elif context_noise > 0:
        context = context.float() + context_noise * noise(tuple(context.shape))
    cond = denoiser.condition(context.float(), actions, metadata, level)
    for t in scheduler.timesteps:
        timestep = t.to(device).expand(B)  # (B,)
        v = denoiser.velocity(x, timestep, cond)  # (B, T, C, h, w) float32
        x = scheduler.step(v, t, x, eta=0.0).prev_sample  # deterministic DDIM
    return x
