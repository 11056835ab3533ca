"""The latent denoiser: T future latents from K past latents, actions and metadata.

    p(Z_{t+1} .. Z_{t+T} | Z_{t-K+1} .. Z_t, actions, m_{t+1} .. m_{t+T})

One class, `Denoiser`, with two interchangeable backbone networks that share everything else
(conditioning encoders, v-prediction loss, noise schedule, sampler interface):

- "unet" (this file): a diffusers `UNet2DConditionModel` on the K context latents and the T
  noisy target latents concatenated in channels; it predicts the velocity of the T targets.
- "dit" (`neuralgym/models/dit.py`): a spatio-temporal diffusion transformer (diffusers'
  `LatteTransformer3DModel`) over patches of the K + T latents, loss on the T targets only.

Conditioning (second document): actions go through an action encoder (an embedding or a
one-hot, then 2 FC + ReLU) to one token per action; the metadata of the T target frames
(first document; predicted by the metadata model at inference) goes through an MLP to one
token per frame. The tokens, with learned position embeddings, are the cross-attention
context. Context latents are noise-augmented during training, with the level given to the
network (GameNGen), so that a rollout on its own imperfect frames stays in distribution.

Metadata maps (`metadata_maps`, UNet only): a token reaches every pixel alike, and a UNet's
convolutions do not know where a pixel is, so a token alone cannot say where to draw an object;
a denoiser conditioned so draws the objects where the context frames' motion puts them and
ignores the metadata (`benchmarks/pong_frames.py --control`). With metadata maps the UNet also
reads, as extra input channels, the pixel's coordinates (x and y in [-1, 1]) and every
normalised metadata value of the T target frames broadcast over the image, so its first
convolution can compare a position with a variable (ball_x against x). A trained denoiser
gains them by `Denoiser.with_input_maps` (the new input weights start at zero).

Position maps (`position_maps`, UNet only): a variable that is an object's position on the
screen (`MetaVar.screen`: ball_x, ball_y, a paddle's y) drawn as a stripe, a Gaussian bump
across its axis at its pixel (value + offset), one input channel per such variable and target
frame; an object at (x, y) is where two stripes cross, so the first convolutions only have to
find the crossing, not learn the pixel scale of each variable from broadcast values (metadata
maps alone placed Pong's paddle and the ball's x but not its y). `Denoiser.with_input_maps`
adds them to a trained denoiser, the new input weights at zero.

Context noise does not make the metadata matter: a small object's trace survives heavy noise
over K frames of C channels, and the frames' motion predicts the next frame well. Context
dropout (`context_drop`, training only) replaces that share of the training windows' context
by zeros at level NO_CONTEXT, so that the actions and metadata alone must make the frame; a
sampler given context noise NO_CONTEXT (`neuralgym.sampler.sample`) dreams so, each frame
drawn from the metadata alone.

Training follows the first document's two stages: stage "lora" learns the frames alone (no
context, no tokens: a learned null token), stage "cond" adds all conditioning, starting from
the stage-"lora" network or any diffusers network ("base") with LoRA adapters (peft) on the
attention projections, new input/output layers and the conditioning encoders trained fully.
Sampling lives in `neuralgym/sampler.py`, so the number of steps is chosen at inference.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, LatteTransformer3DModel, UNet2DConditionModel
from safetensors.torch import load_file
from torch import Tensor, nn

from neuralgym.model_folder import ModelFolder, config_from_dict
from neuralgym.models.dit import SpatioTemporalDiT

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
LEVEL_SCALE = 1000.0  # context noise level -> the network's (sinusoidal) level input
NO_CONTEXT = -1.0  # the level that marks a dropped context (zeros): `context_drop`
# Fields that describe the network itself (taken from a stage-"lora" base), not the task.
ARCHITECTURE_FIELDS = (
    "backbone", "token_dim", "block_out_channels", "down_block_types", "up_block_types",
    "layers_per_block", "attention_head_dim", "norm_num_groups", "dit_patch_size", "dit_layers",
    "dit_heads", "dit_head_dim", "base_kwargs", "num_train_timesteps", "beta_schedule",
    "beta_start", "beta_end", "rescale_betas_zero_snr",
)


def _device_generator(generator: torch.Generator | None, device: torch.device
                      ) -> torch.Generator | None:
    """A generator on `device` derived from `generator` (draws stay a function of its seed)."""
    if generator is None or generator.device.type == device.type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


class ActionEncoder(nn.Module):
    """Discrete actions -> one token each (second document, appendix B).

    "embedding": nn.Embedding -> FC -> ReLU -> FC -> ReLU;
    "onehot":    one-hot      -> FC -> ReLU -> FC -> ReLU.
    """

    def __init__(self, n_actions: int, dim: int, encoding: str = "embedding"):
        super().__init__()
        if encoding not in ("embedding", "onehot"):
            raise ValueError(f"action encoding must be 'embedding' or 'onehot', got {encoding!r}")
        self.n_actions = n_actions
        self.encoding = encoding
        self.embed = nn.Embedding(n_actions, dim) if encoding == "embedding" else None
        first = dim if encoding == "embedding" else n_actions
        self.mlp = nn.Sequential(nn.Linear(first, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, actions: Tensor) -> Tensor:  # (B, A) int64 -> (B, A, D)
        if self.embed is not None:
            x = self.embed(actions)  # (B, A, D)
        else:
            x = F.one_hot(actions, self.n_actions).to(self.mlp[0].weight.dtype)  # (B, A, n)
        return self.mlp(x)


class MetadataEncoder(nn.Module):
    """Normalised metadata of a frame -> one token (an MLP)."""

    def __init__(self, metadata_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(metadata_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, metadata: Tensor) -> Tensor:  # (B, T, M) normalised -> (B, T, D)
        return self.mlp(metadata)


class UNetBackbone(nn.Module):
    """diffusers UNet2DConditionModel on [K context latents, T noisy latents] in channels.

    The context noise level enters as a "timestep" class embedding added to the time embedding;
    the tokens enter through cross-attention. Latents of any size are zero-padded to a multiple
    of 2^(downsamples) and the output cropped back.
    """

    ADAPTED = ("conv_in", "conv_out", "class_embedding")  # new layers when starting from a base

    def __init__(self, channels: int, context: int, frames: int, kwargs: dict[str, Any],
                 maps: int = 0, positions: tuple[str, ...] = (), stride: int = 4,
                 sigma: float = 2.0):
        """maps: metadata values broadcast as input channels (besides 2 coordinate channels
        when > 0; 0: none); positions: the axis ("x" or "y") of each position-map channel,
        drawn with a Gaussian of `sigma` frame pixels on a grid of latent pixels `stride`
        frame pixels apart."""
        super().__init__()
        self.channels, self.context, self.frames = channels, context, frames
        self.maps = maps
        self._coords: dict[tuple, Tensor] = {}  # coords(), per shape, device and dtype
        self.positions, self.stride, self.sigma = tuple(positions), stride, sigma
        self.register_buffer("position_is_y", torch.tensor([a == "y" for a in positions],
                                                           dtype=torch.bool), persistent=False)
        self.net = UNet2DConditionModel(
            **kwargs,
            in_channels=(channels * (context + frames) + (maps + 2 if maps else 0)
                         + len(self.positions)),
            out_channels=channels * frames,
            class_embed_type="timestep",
            num_class_embeds=None,
        )
        self.multiple = 2 ** (len(kwargs["down_block_types"]) - 1)

    def forward(self, noisy: Tensor, timestep: Tensor, context: Tensor, level: Tensor,
                tokens: Tensor, maps: Tensor | None = None,
                positions: Tensor | None = None) -> Tensor:
        """level (B,): the context noise level on the timestep scale; maps (B, maps): the
        normalised metadata to broadcast (with `maps` > 0); positions (B, P): the frame
        pixel of each position-map channel (with `self.positions`)."""
        B, T, C, h, w = noisy.shape  # (B, T, C, h, w)
        x = torch.cat([context.flatten(1, 2), noisy.flatten(1, 2)], 1)  # (B, C*(K+T), h, w)
        x = F.pad(x, (0, -w % self.multiple, 0, -h % self.multiple))  # (B, C*(K+T), h', w')
        if self.maps:
            if maps is None or maps.shape[1] != self.maps:
                raise ValueError(f"this UNet reads {self.maps} metadata maps; pass them")
            hp, wp = x.shape[-2:]
            x = torch.cat([x, self.coords(h, w, x).expand(B, -1, -1, -1),  # (B, 2, h', w')
                           maps.to(x.dtype)[:, :, None, None].expand(-1, -1, hp, wp)], 1)
        if self.positions:
            if positions is None or positions.shape[1] != len(self.positions):
                raise ValueError(f"this UNet reads {len(self.positions)} position maps; "
                                 "pass them")
            x = torch.cat([x, self.stripes(positions, *x.shape[-2:]).to(x.dtype)], 1)
        out = self.net(x, timestep, encoder_hidden_states=tokens,  # tokens (B, N, D)
                       class_labels=level).sample  # (B, C*T, h', w')
        return out[..., :h, :w].reshape(B, T, C, h, w)

    def coords(self, h: int, w: int, like: Tensor) -> Tensor:
        """(2, h', w') y and x in -1..1 over the h x w latent, zero in the padding of `like`
        (B, *, h', w'); built once per shape, device and dtype."""
        hp, wp = like.shape[-2:]
        key = (h, w, hp, wp, like.device, like.dtype)
        if key not in self._coords:
            ys = torch.linspace(-1, 1, h, device=like.device, dtype=like.dtype)
            xs = torch.linspace(-1, 1, w, device=like.device, dtype=like.dtype)
            grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, h, w): y, x
            self._coords[key] = F.pad(grid, (0, wp - w, 0, hp - h))  # (2, h', w')
        return self._coords[key]

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 (nn.Module's signature)
        """`to`, `cuda`, `half` and the like: the cached coordinates stay on the old device
        and dtype, so they are dropped (rebuilt at the next call)."""
        self._coords.clear()
        return super()._apply(fn, recurse)

    def stripes(self, positions: Tensor, hp: int, wp: int) -> Tensor:
        """(B, P, hp, wp) float32: per channel a Gaussian bump across its axis at its pixel,
        constant along the other axis; latent pixel i covers frame pixels stride*i ..
        stride*(i+1) - 1 (frames are padded at the bottom and right)."""
        pos = positions.float()[:, :, None]  # (B, P, 1)
        half = (self.stride - 1) / 2

        def bump(n: int) -> Tensor:  # (B, P, n)
            centres = torch.arange(n, device=pos.device, dtype=torch.float32) * self.stride
            return torch.exp(-0.5 * ((centres + half - pos) / self.sigma) ** 2)

        rows = bump(hp)[:, :, :, None].expand(-1, -1, hp, wp)  # (B, P, hp, wp)
        cols = bump(wp)[:, :, None, :].expand(-1, -1, hp, wp)  # (B, P, hp, wp)
        return torch.where(self.position_is_y[None, :, None, None], rows, cols)


@dataclass
class Condition:
    """What a denoiser call is conditioned on, computed once per sampler call."""

    context: Tensor  # (B, K, C, h, w) latents (zeros in stage "lora")
    level: Tensor  # (B,) context noise level
    tokens: Tensor  # (B, N, D) cross-attention tokens
    maps: Tensor | None = None  # (B, T*M) normalised metadata, for metadata maps
    positions: Tensor | None = None  # (B, T*P) frame pixels, for position maps


@dataclass
class DenoiserConfig:
    """Everything needed to rebuild a `Denoiser` (stored in the world-model folder)."""

    # the data
    latent_channels: int = 16  # C
    latent_height: int = 16  # h
    latent_width: int = 16  # w
    context: int = 4  # K past latents
    frames_per_call: int = 1  # T latents generated per call
    n_actions: int = 4
    metadata_dim: int = 0  # M; 0 = metadata-ignorant (the first document's baseline)
    # conditioning
    stage: str = "cond"  # "lora": frames alone (first stage); "cond": all conditioning
    action_encoding: str = "embedding"  # "embedding" | "onehot"
    action_context: str = "future"  # "future": a_t .. a_{t+T-1}; "past+future": also K-1 past
    token_dim: int = 256  # D, the cross-attention dimension
    context_noise_max: float = 0.3  # context noise level ~ U(0, max) in training
    metadata_maps: bool = False  # unet: metadata and coordinates also as input channels
    context_drop: float = 0.0  # training: the share of windows given no context (NO_CONTEXT)
    # unet: position maps, (metadata index, axis "x"/"y", pixel offset) per on-screen position
    # (GameSpec.screen_positions), drawn on latent pixels latent_stride frame pixels apart
    position_maps: tuple[tuple[int, str, float], ...] = ()
    latent_stride: int = 4  # frame pixels per latent pixel (the VAE's downsampling)
    position_sigma: float = 2.0  # the stripes' Gaussian width in frame pixels
    # backbone
    backbone: str = "unet"  # "unet" | "dit"
    block_out_channels: tuple[int, ...] = (64, 128, 128)  # unet
    down_block_types: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D",
                                         "CrossAttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
    layers_per_block: int = 2
    attention_head_dim: int = 8  # diffusers' legacy name: the number of heads
    norm_num_groups: int = 32
    dit_patch_size: int = 2  # dit
    dit_layers: int = 4  # spatial + temporal block pairs
    dit_heads: int = 4
    dit_head_dim: int = 64
    base_kwargs: dict[str, Any] = field(default_factory=dict)  # a base network's constructor
    # arguments (set when the network was started from a diffusers model folder)
    # diffusion (v-prediction; zero terminal SNR + trailing spacing suit few-step sampling)
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    rescale_betas_zero_snr: bool = True

    def __post_init__(self) -> None:
        checks = {
            "stage": (self.stage, ("lora", "cond")),
            "backbone": (self.backbone, ("unet", "dit")),
            "action_encoding": (self.action_encoding, ("embedding", "onehot")),
            "action_context": (self.action_context, ("future", "past+future")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"DenoiserConfig.{name} must be one of {allowed}, got {value!r}")
        if self.context < 1 or self.frames_per_call < 1:
            raise ValueError("context and frames_per_call must be at least 1")
        if not 0.0 <= self.context_drop <= 1.0:
            raise ValueError(f"context_drop must be in [0, 1], got {self.context_drop}")
        if self.metadata_maps and (self.backbone != "unet" or not self.metadata_dim):
            raise ValueError("metadata_maps needs the unet backbone and metadata (metadata_dim)")
        self.position_maps = tuple((int(i), str(a), float(o)) for i, a, o in self.position_maps)
        if self.position_maps and (self.backbone != "unet" or not self.metadata_dim):
            raise ValueError("position_maps needs the unet backbone and metadata (metadata_dim)")
        for i, axis, _ in self.position_maps:
            if not 0 <= i < self.metadata_dim or axis not in ("x", "y"):
                raise ValueError(f"position_maps: ({i}, {axis!r}) needs a metadata index in "
                                 f"0..{self.metadata_dim - 1} and an axis 'x' or 'y'")
        if self.latent_stride < 1 or self.position_sigma <= 0:
            raise ValueError("latent_stride must be at least 1 and position_sigma positive")

    @property
    def n_action_tokens(self) -> int:
        T, K = self.frames_per_call, self.context
        return T if self.action_context == "future" else K - 1 + T

    @property
    def n_tokens(self) -> int:
        return self.n_action_tokens + (self.frames_per_call if self.metadata_dim else 0)

    def scheduler_config(self) -> dict[str, Any]:
        """The training noise schedule (DDPMScheduler arguments); samplers derive from it."""
        return dict(
            num_train_timesteps=self.num_train_timesteps,
            beta_schedule=self.beta_schedule,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
            rescale_betas_zero_snr=self.rescale_betas_zero_snr,
            prediction_type="v_prediction",
            timestep_spacing="trailing",
            clip_sample=False,
        )


class Denoiser(nn.Module):
    """v-prediction latent denoiser with a UNet or DiT backbone (see the module docstring)."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        c = config
        D = c.token_dim
        if c.backbone == "unet":
            kwargs: dict[str, Any] = dict(
                block_out_channels=tuple(c.block_out_channels),
                down_block_types=tuple(c.down_block_types),
                up_block_types=tuple(c.up_block_types),
                layers_per_block=c.layers_per_block,
                attention_head_dim=c.attention_head_dim,
                norm_num_groups=c.norm_num_groups,
                cross_attention_dim=D,
            )
            kwargs.update(c.base_kwargs)
            if kwargs["cross_attention_dim"] != D:
                raise ValueError(f"token_dim {D} must equal the UNet's cross_attention_dim "
                                 f"{kwargs['cross_attention_dim']}")
            maps = c.frames_per_call * c.metadata_dim if c.metadata_maps else 0
            axes = tuple(a for _ in range(c.frames_per_call) for _, a, _ in c.position_maps)
            self.backbone: nn.Module = UNetBackbone(c.latent_channels, c.context,
                                                    c.frames_per_call, kwargs, maps, axes,
                                                    c.latent_stride, c.position_sigma)
        else:
            self.backbone = SpatioTemporalDiT(
                channels=c.latent_channels, context=c.context, frames=c.frames_per_call,
                token_dim=D, height=c.latent_height, width=c.latent_width,
                patch_size=c.dit_patch_size, layers=c.dit_layers, heads=c.dit_heads,
                head_dim=c.dit_head_dim, base_kwargs=c.base_kwargs,
            )
        self.action_encoder = ActionEncoder(c.n_actions, D, c.action_encoding)
        self.metadata_encoder = MetadataEncoder(c.metadata_dim, D) if c.metadata_dim else None
        self.token_pos = nn.Parameter(torch.randn(c.n_tokens, D) * 0.02)  # (N, D)
        self.null_token = nn.Parameter(torch.randn(1, D) * 0.02)  # (1, D), stage "lora"
        if c.metadata_dim:
            self.register_buffer("metadata_mean", torch.zeros(c.metadata_dim))
            self.register_buffer("metadata_std", torch.ones(c.metadata_dim))
        self.scheduler = DDPMScheduler(**c.scheduler_config())
        self.lora_rank = 0
        self.set_trainable()

    # -- set-up ---------------------------------------------------------------------------

    def set_metadata_stats(self, mean: Any, std: Any) -> None:
        """Store the metadata normalisation (raw metadata in, (m - mean) / std inside)."""
        if not self.config.metadata_dim:
            return
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.numel() != self.config.metadata_dim or std_t.numel() != mean_t.numel():
            raise ValueError(f"metadata stats have {mean_t.numel()}/{std_t.numel()} values, "
                             f"expected {self.config.metadata_dim}")
        std_t = torch.where(std_t > 1e-6, std_t, torch.ones_like(std_t))
        self.metadata_mean.copy_(mean_t)
        self.metadata_std.copy_(std_t)

    def load_base(self, base: BaseModel) -> list[str]:
        """Copy a base network's weights where names and shapes match (others stay new).

        A diffusers folder fills the backbone network; a world-model folder's denoiser fills
        the whole denoiser (encoders included). Returns the names left at their new values.
        """
        weights = base.weights()
        target: nn.Module = self.backbone.net if base.kind == "diffusers" else self
        own = target.state_dict()
        matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        target.load_state_dict(matched, strict=False)
        return sorted(set(own) - set(matched))

    def add_lora(self, rank: int) -> None:
        """LoRA adapters (peft) on the backbone's attention projections; freezes the rest of
        the backbone except its new input/output layers. Conditioning encoders stay trained."""
        from peft import LoraConfig, LoraModel  # training only: inference never needs peft

        if self.lora_rank:
            raise RuntimeError("LoRA adapters were already added")
        config = LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS)
        self.backbone.net = LoraModel(self.backbone.net, config, "default")
        self.lora_rank = rank
        self.set_trainable()

    def set_trainable(self) -> None:
        """requires_grad by stage and LoRA: only parameters that are used and trained."""
        lora_stage = self.config.stage == "lora"
        for name, p in self.named_parameters():
            if name.startswith("backbone."):
                local = name.removeprefix("backbone.").replace("net.model.", "net.")
                adapted = any(local.startswith(a) or local.startswith(f"net.{a}")
                              for a in self.backbone.ADAPTED)
                p.requires_grad_(not self.lora_rank or "lora_" in name or adapted)
            elif name == "null_token":
                p.requires_grad_(lora_stage)
            else:  # action/metadata encoders and token positions: unused in stage "lora"
                p.requires_grad_(not lora_stage)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def merged(self) -> Denoiser:
        """A plain copy (LoRA merged into the weights with peft's merge_and_unload), whose
        state dict loads into `Denoiser(self.config)` without peft."""
        plain = copy.deepcopy(self)
        if plain.lora_rank:
            plain.backbone.net = plain.backbone.net.merge_and_unload()
            plain.lora_rank = 0
            plain.set_trainable()
        return plain

    def with_input_maps(self, metadata_maps: bool | None = None,
                        position_maps: tuple[tuple[int, str, float], ...] | None = None,
                        latent_stride: int | None = None) -> Denoiser:
        """A copy that also reads metadata and/or position maps (see the module docstring):
        the same weights, the UNet's first convolution widened with zero weights for the new
        channels, so that it computes what this one does until trained. Maps are only added,
        after those it reads (metadata maps cannot come in after position maps)."""
        c = self.config
        if self.lora_rank:
            raise ValueError("merge the LoRA adapters first (Denoiser.merged)")
        changes: dict[str, Any] = {}
        if metadata_maps is not None and metadata_maps != c.metadata_maps:
            if not metadata_maps or c.position_maps:
                raise ValueError("metadata maps can only be added, and only before position "
                                 "maps")
            changes["metadata_maps"] = True
        if position_maps is not None and tuple(position_maps) != c.position_maps:
            if c.position_maps:
                raise ValueError(f"this denoiser already reads position maps "
                                 f"{c.position_maps}")
            changes["position_maps"] = tuple(position_maps)
            if latent_stride is not None:
                changes["latent_stride"] = latent_stride
        if not changes:
            raise ValueError("this denoiser already reads these maps")
        new = Denoiser(replace(c, **changes))
        state = self.state_dict()
        key = "backbone.net.conv_in.weight"
        wide = new.state_dict()[key]  # (O, I + new channels, 3, 3)
        weight = torch.zeros_like(wide)
        weight[:, :state[key].shape[1]] = state[key]
        state[key] = weight
        new.load_state_dict(state)
        return new.train(self.training)

    def with_metadata(self, columns: Sequence[int | None]) -> Denoiser:
        """A copy that reads len(columns) metadata variables, for a game whose metadata gained
        variables: new variable j is old variable columns[j], or a new one (None), whose
        input weights start at zero and whose normalisation is (0, 1) until
        `set_metadata_stats`, so that the copy computes what this one does until trained.
        Position maps follow their variables to the new indices."""
        c = self.config
        if self.lora_rank:
            raise ValueError("merge the LoRA adapters first (Denoiser.merged)")
        if not c.metadata_dim:
            raise ValueError("this denoiser reads no metadata (metadata_dim 0); train one that "
                             "does")
        if c.metadata_maps:
            raise ValueError("a denoiser with metadata maps cannot gain metadata variables")
        old = [i for i in columns if i is not None]
        if sorted(old) != list(range(c.metadata_dim)):
            raise ValueError(f"columns must name each of the {c.metadata_dim} old variables "
                             f"once (None for a new one), got {list(columns)}")
        where = {i: j for j, i in enumerate(columns) if i is not None}
        maps = tuple((where[i], axis, offset) for i, axis, offset in c.position_maps)
        new = Denoiser(replace(c, metadata_dim=len(columns), position_maps=maps))
        state = self.state_dict()
        key = "metadata_encoder.mlp.0.weight"  # (D, M)
        weight = torch.zeros_like(new.state_dict()[key])  # (D, M')
        mean, std = torch.zeros(len(columns)), torch.ones(len(columns))
        for i, j in where.items():  # old index -> new index
            weight[:, j] = state[key][:, i]
            mean[j], std[j] = state["metadata_mean"][i], state["metadata_std"][i]
        state[key], state["metadata_mean"], state["metadata_std"] = weight, mean, std
        new.load_state_dict(state)
        return new.train(self.training)

    @classmethod
    def from_folder(cls, folder: ModelFolder, name: str = "denoiser") -> Denoiser:
        """Rebuild a component of a world-model folder, in eval mode."""
        model = cls(folder.component_config(name, DenoiserConfig))
        folder.load_component(name, model)
        return model.eval()

    # -- conditioning ----------------------------------------------------------------------

    def condition(self, context: Tensor, actions: Tensor, metadata: Tensor | None,
                  level: Tensor) -> Condition:
        """Tokens and context for a call.

        context (B, K, C, h, w); actions (B, >=A) int64, the last A used (A = T future, or
        K-1 past + T future); metadata (B, >=T, M) raw, the last T rows (those of the target
        frames) used; level (B,) the context noise level.
        """
        c = self.config
        B = context.shape[0]
        dtype = self.token_pos.dtype
        if c.stage == "lora":  # frames alone: no context, a learned null token
            return Condition(torch.zeros_like(context, dtype=dtype), torch.zeros_like(level),
                             self.null_token.expand(B, 1, -1))  # (B, 1, D)
        A = c.n_action_tokens
        if actions.shape[1] < A:
            raise ValueError(f"need {A} actions ({c.action_context}), got {actions.shape[1]}")
        tokens = [self.action_encoder(actions[:, -A:].long())]  # (B, A, D)
        if self.metadata_encoder is not None:
            if metadata is None:
                raise ValueError("this denoiser is conditioned on metadata; pass it")
            m = metadata[:, -c.frames_per_call:].float()  # (B, T, M)
            m = (m - self.metadata_mean) / self.metadata_std
            tokens.append(self.metadata_encoder(m.to(dtype)))  # (B, T, D)
            maps = m.flatten(1).to(dtype) if c.metadata_maps else None  # (B, T*M)
            positions = None
            if c.position_maps:
                raw = metadata[:, -c.frames_per_call:].float()  # (B, T, M)
                positions = torch.stack([raw[:, :, i] + offset for i, _, offset
                                         in c.position_maps], -1).flatten(1)  # (B, T*P)
        else:
            maps = positions = None
        tokens_t = torch.cat(tokens, 1) + self.token_pos  # (B, N, D)
        # contiguous: the dream hands a view of its growing history, whose strides would make
        # torch.compile recompile at every new history length
        return Condition(context.to(dtype).contiguous(), level, tokens_t, maps, positions)

    def velocity(self, noisy: Tensor, timestep: Tensor, cond: Condition) -> Tensor:
        """The network: predicted v of the T targets (B, T, C, h, w), float32."""
        dtype = self.token_pos.dtype
        level = (cond.level * LEVEL_SCALE).to(dtype)  # (B,) on the timestep scale
        if cond.maps is not None or cond.positions is not None:
            v = self.backbone(noisy.to(dtype), timestep, cond.context, level, cond.tokens,
                              cond.maps, cond.positions)
        else:
            v = self.backbone(noisy.to(dtype), timestep, cond.context, level, cond.tokens)
        return v.float()

    # -- training --------------------------------------------------------------------------

    @torch.compiler.disable  # random draws from a generator: kept out of torch.compile
    @torch.no_grad()
    def noise_batch(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(noisy targets, their velocity, timesteps, noise-augmented context, its level)."""
        target = batch["target"].float()  # (B, T, C, h, w)
        context = batch["context"].float()  # (B, K, C, h, w)
        B, device = target.shape[0], target.device
        g = _device_generator(generator, device)
        t = torch.randint(0, self.config.num_train_timesteps, (B,), generator=g,
                          device=device)  # (B,)
        noise = torch.randn(target.shape, generator=g, device=device)  # (B, T, C, h, w)
        level = torch.rand(B, generator=g, device=device) * self.config.context_noise_max
        ctx_noise = torch.randn(context.shape, generator=g, device=device)
        context = context + level[:, None, None, None, None] * ctx_noise  # (B, K, C, h, w)
        if self.config.context_drop:
            drop = torch.rand(B, generator=g, device=device) < self.config.context_drop  # (B,)
            context = torch.where(drop[:, None, None, None, None], 0.0, context)
            level = torch.where(drop, NO_CONTEXT, level)
        noisy = self.scheduler.add_noise(target, noise, t)  # (B, T, C, h, w)
        v_target = self.scheduler.get_velocity(target, noise, t)  # (B, T, C, h, w)
        return noisy, v_target, t, context, level

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                ) -> tuple[Tensor, dict[str, float]]:
        """v-prediction loss on the T targets of a batch of windows.

        batch: context (B, K, C, h, w), target (B, T, C, h, w), actions (B, K-1+T),
        metadata (B, K+T, M) raw, optionally weight (B,): each window's loss weight (the
        importance weights of a non-uniform draw). All noise is drawn from `generator` (when
        given).
        """
        noisy, v_target, t, context, level = self.noise_batch(batch, generator)
        cond = self.condition(context, batch["actions"], batch.get("metadata"), level)
        v = self.velocity(noisy, t, cond)  # (B, T, C, h, w)
        weight = batch.get("weight")
        if weight is None:
            loss = F.mse_loss(v, v_target)
        else:
            per_window = F.mse_loss(v, v_target, reduction="none").flatten(1).mean(1)  # (B,)
            loss = (per_window * weight.float()).mean()
        return loss, {"loss": loss.item()}


# -- base networks ---------------------------------------------------------------------------


@dataclass
class BaseModel:
    """A network to start from: a diffusers model folder (config.json + safetensors), or the
    denoiser component of a world-model folder (e.g. the stage-"lora" one)."""

    path: Path
    kind: str  # "diffusers" | "world-model"
    config: dict[str, Any]  # diffusers model config, or the DenoiserConfig as a dict
    component: str = ""

    @classmethod
    def find(cls, path: str | os.PathLike,
             components: tuple[str, ...] = ("denoiser_lora", "denoiser")) -> BaseModel:
        """The base in `path`; in a world-model folder the first of `components` present."""
        root = Path(path)
        for sub in ("", "unet", "transformer"):  # a model folder or a pipeline folder
            cfg_path = root / sub / "config.json"
            if cfg_path.exists():
                config = json.loads(cfg_path.read_text())
                if "components" in config:  # a world-model folder
                    comps = config["components"]
                    name = next((c for c in components if c in comps), None)
                    if name is None:
                        raise FileNotFoundError(
                            f"world-model folder {root} has no denoiser to start from "
                            f"(it has: {', '.join(comps) or 'none'})")
                    return cls(root, "world-model", comps[name], name)
                if "_class_name" in config:
                    return cls(root / sub, "diffusers", config)
        raise FileNotFoundError(
            f"base {root} is neither a diffusers model folder (config.json with _class_name, "
            "maybe under unet/ or transformer/) nor a world-model folder")

    def weights(self) -> dict[str, Tensor]:
        if self.kind == "world-model":
            return load_file(self.path / f"{self.component}.safetensors")
        index = self.path / "diffusion_pytorch_model.safetensors.index.json"
        if index.exists():  # sharded
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            out: dict[str, Tensor] = {}
            for f in files:
                out.update(load_file(self.path / f))
            return out
        path = self.path / "diffusion_pytorch_model.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (only safetensors weights are read)")
        return load_file(path)

    def apply_to(self, config: DenoiserConfig) -> DenoiserConfig:
        """`config` with the network architecture of this base (the task fields kept)."""
        if self.kind == "world-model":
            base = config_from_dict(DenoiserConfig, self.config)
            if base.backbone != config.backbone:
                raise ValueError(f"the base denoiser in {self.path} is a {base.backbone!r}, "
                                 f"not a {config.backbone!r}")
            return replace(config, **{k: getattr(base, k) for k in ARCHITECTURE_FIELDS})
        cls_name = self.config.get("_class_name")
        wanted = {"unet": UNet2DConditionModel, "dit": LatteTransformer3DModel}[config.backbone]
        if cls_name != wanted.__name__:
            raise ValueError(f"backbone {config.backbone!r} needs a {wanted.__name__} base, "
                             f"{self.path} is a {cls_name}")
        params = set(inspect.signature(wanted.__init__).parameters) - {"self"}
        drop = {"in_channels", "out_channels", "sample_size", "class_embed_type",
                "num_class_embeds", "caption_channels", "video_length"}
        kwargs = {k: v for k, v in self.config.items() if k in params and k not in drop}
        if config.backbone == "unet":
            dim = kwargs.get("cross_attention_dim", 1280)
            if not isinstance(dim, int):
                raise ValueError(f"{self.path}: per-block cross_attention_dim is not supported")
            return replace(config, base_kwargs=kwargs, token_dim=dim)
        return replace(config, base_kwargs=kwargs)

