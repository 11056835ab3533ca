"""The world model: VAE + metadata predictor g_phi + conditioned denoiser + sampler.

One step of the dream, in order ("metadata leads, pixels follow"):

1. m_t = g_phi(m_{t-1}, m_{t-2}, Z_{t-1}, a_{t-1})
2. Z_t ~ denoiser(noise | Z_{t-K..t-1}, actions, m_t)   with a few-step sampler
3. o_t = decode(Z_t)   native resolution, uint8: the VAE's decoder, or the folder's fast
   "decoder" component (`neuralgym.models.decoder`) where it has one

In multi-frame mode (T = frames_per_call > 1) one sampler call generates Z_{t+1..t+T} from
the T future actions; g_phi first rolls the metadata T steps ahead, reusing the newest known
latent for the steps whose latent is still being generated.

`WorldModel.from_pretrained(dir)` rebuilds everything from a world-model folder; the class
knows nothing of Gymnasium. It implements the paired benchmark's `Predictor` (`rollout`,
`rollout_with_metadata`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralgym.games import step_limits
from neuralgym.model_folder import ModelFolder, ModelFolderError
from neuralgym.models.decoder import COMPONENT as DECODER
from neuralgym.models.decoder import FrameDecoder
from neuralgym.models.denoiser import NO_CONTEXT, Denoiser
from neuralgym.models.metadata import MetadataConfig, MetadataPredictor, hold_to_limits
from neuralgym.models.vae import FrameVAE, LatentDecoder
from neuralgym.sampler import sample


@dataclass
class DreamState:
    """The recent past of a batch of dreams (the newest entry last)."""

    latents: Tensor  # (B, L, C, h, w) Z_{t-L+1} .. Z_t
    metadata: Tensor  # (B, L, M) m_{t-L+1} .. m_t, raw scale
    actions: Tensor  # (B, L-1) int64, the actions between those frames

    def push(self, latents: Tensor, metadata: Tensor, actions: Tensor, keep: int) -> DreamState:
        """Append T new frames (latents (B,T,C,h,w), metadata (B,T,M)) reached by `actions`
        (B,T) and keep the last `keep` frames."""
        lat = torch.cat([self.latents, latents], 1)[:, -keep:]
        meta = torch.cat([self.metadata, metadata], 1)[:, -keep:]
        acts = torch.cat([self.actions, actions], 1)
        acts = acts[:, max(0, acts.shape[1] - (keep - 1)):]
        return DreamState(lat, meta, acts)


def _in_bf16(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its floating-point tensor arguments cast to bf16 and autocast off inside."""
    def cast(x: Any) -> Any:
        return x.to(torch.bfloat16) if torch.is_tensor(x) and x.is_floating_point() else x

    def call(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            return fn(*map(cast, args), **{k: cast(v) for k, v in kwargs.items()})
    return call


class WorldModel:
    """A trained world model, ready to dream on `device`.

    Args:
        vae, metadata, denoiser: the components (metadata may be None for a
            metadata-ignorant denoiser; the dream's metadata then stay at their last value).
        steps: denoising steps per sampler call (an inference choice, not a retraining).
        name: how benchmarks label it.
        decoder: what turns latents into frames (default: the VAE itself); a
            `FrameDecoder` trained on this VAE's latents is the fast alternative.
    """

    def __init__(self, vae: FrameVAE, metadata: MetadataPredictor | None, denoiser: Denoiser,
                 steps: int = 3, name: str = "world-model", device: str | torch.device = "cpu",
                 env_id: str | None = None, decoder: LatentDecoder | None = None):
        self.device = torch.device(device)
        self.env_id = env_id
        self.vae = vae.to(self.device).eval()
        if decoder is not None and decoder.config.latent_shape != vae.config.latent_shape:
            raise ModelFolderError(f"the decoder reads latents {decoder.config.latent_shape}, "
                                   f"the vae makes {vae.config.latent_shape}")
        self.decoder = self.vae if decoder is None else decoder.to(self.device).eval()
        self.g = metadata.to(self.device).eval() if metadata is not None else None
        self.denoiser = denoiser.to(self.device).eval()
        if self.device.type == "cpu":
            # oneDNN's convolutions run faster on channels-last weights (benchmarks/results/
            # throughput/breakout-cpu-2core-session4-fast.meta.json); the VAE's own decoder,
            # whose group norms run slower so, keeps its layout. On CUDA the default layout
            # is the faster one (throughput/breakout-h100-session5-channels-last.meta.json).
            self.set_memory_format(torch.channels_last)
        self.steps = steps
        # the context noise level the sampler gives the denoiser (its context latents noised
        # so, as in training): > 0 leans it on the actions and metadata rather than on the
        # past frames' motion; NO_CONTEXT (-1): none, each frame made from the actions and
        # metadata alone (a denoiser trained with context dropout); the folder's config.json
        # "sampler": {"context_noise": ...}
        self.context_noise = 0.0
        self.name = name
        self.folder: str | None = None  # the world-model folder it was loaded from, if any
        self.bf16_weights = False  # `hold_in_bf16` was called
        cfg = denoiser.config
        if cfg.metadata_dim and self.g is None:
            raise ModelFolderError("the denoiser is conditioned on metadata but the folder has "
                                   "no metadata predictor; train one with "
                                   "training/train_metadata.py")
        self.frames_per_call = cfg.frames_per_call
        # the game's per-step bounds on its variables (GameSpec.step_limits), (2, M) lo / hi
        # on the device; g_phi's predictions are held to them. None: no bounds (an unknown
        # game, or metadata that are not the game's); set it to None to dream without them.
        limits = None if self.g is None else step_limits(env_id, self.g.config.metadata_names)
        self.step_limits: Tensor | None = None if limits is None else torch.as_tensor(
            limits, dtype=torch.float32, device=self.device)
        # True: the dream draws g_phi's classes (scores, lives) from its distributions, with
        # the sampler's generator (`predict_metadata`); False (default): the most likely ones
        self.sample_metadata = False
        window = self.g.config.window if self.g is not None else 1
        self.context = max(cfg.context, 2)  # frames a dream starts from (g_phi needs 2)
        self.history = max(cfg.context, window + 1)  # frames kept while dreaming

    def enable_cuda_graphs(self) -> None:
        """Replay the denoiser's backbone and the frame decoder from CUDA graphs
        (`neuralgym.cuda_graphs`), one captured per input shape: several times faster at small
        batches, where a step is bound by kernel launches. CUDA only; the model becomes
        inference-only (no gradients)."""
        from neuralgym.cuda_graphs import CudaGraphed

        if self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, not {self.device}")
        # without requires_grad, autocast keeps no cache of cast weights, whose memory a
        # captured graph would otherwise read after the cache is freed
        for module in (self.vae, self.decoder, self.denoiser, self.g):
            if module is not None:
                module.requires_grad_(False)
        backbone = self.denoiser.backbone
        backbone.forward = CudaGraphed(backbone.forward)  # type: ignore[method-assign]
        self.decoder._decode_raw = CudaGraphed(  # type: ignore[method-assign]
            self.decoder._decode_raw)

    def set_memory_format(self, memory_format: torch.memory_format) -> None:
        """The weight layout of the denoiser and of the fast decoder (the VAE keeps its own)."""
        self.denoiser.to(memory_format=memory_format)
        if self.decoder is not self.vae:
            self.decoder.to(memory_format=memory_format)

    def hold_in_bf16(self) -> None:
        """Hold the denoiser's backbone (and the fast decoder, where frames come from one) in
        bf16 and run them without autocast, so that the ops autocast keeps in float32 (group
        norms) run in bf16 too: faster on CUDA (benchmarks/results/throughput/
        breakout-h100-session6-bf16-weights.meta.json). The sampler, g_phi and the VAE stay as
        they are. Call it before `enable_cuda_graphs` or compiling; a second call does nothing."""
        if self.bf16_weights:
            return
        backbone = self.denoiser.backbone.to(torch.bfloat16)
        backbone.forward = _in_bf16(backbone.forward)  # type: ignore[method-assign]
        if self.decoder is not self.vae:
            self.decoder.to(torch.bfloat16)
            self.decoder._decode_raw = _in_bf16(  # type: ignore[method-assign]
                self.decoder._decode_raw)
        self.bf16_weights = True

    @property
    def decoder_kind(self) -> str:
        """"fast" when frames come from a `FrameDecoder`, "vae" when from the VAE itself."""
        return "vae" if self.decoder is self.vae else "fast"

    @classmethod
    def from_pretrained(cls, root: str | os.PathLike, device: str | torch.device = "cpu",
                        steps: int | None = None, denoiser: str = "denoiser",
                        metadata: str = "metadata", decoder: str = "auto") -> WorldModel:
        """Load a world-model folder (config.json + safetensors per component). `decoder`:
        "auto" follows the folder's config.json key "decode_with" ("vae" or "fast"; without
        it: the fast "decoder" component where the folder has one, else the VAE); "vae"
        always decodes with the VAE; "fast" requires the fast decoder."""
        folder = ModelFolder(root)
        config = folder.read_config()
        vae = FrameVAE.from_folder(root)
        if decoder not in ("auto", "vae", "fast"):
            raise ValueError(f"decoder must be 'auto', 'vae' or 'fast', got {decoder!r}")
        if decoder == "auto":
            decoder = config.get("decode_with") or ("fast" if folder.has(DECODER) else "vae")
            if decoder not in ("vae", "fast"):
                raise ModelFolderError(f"{root}/config.json: decode_with must be 'vae' or "
                                       f"'fast', got {decoder!r}")
        if decoder == "fast" and not folder.has(DECODER):
            raise ModelFolderError(f"{root} has no fast decoder: train one with "
                                   f"training/train_decoder.py --model {root}")
        fast = FrameDecoder.from_folder(root) if decoder == "fast" else None
        den = Denoiser.from_folder(folder, denoiser)
        g = None
        if metadata in config.get("components", {}):
            g = MetadataPredictor(folder.component_config(metadata, MetadataConfig))
            folder.load_component(metadata, g)
        sampler = config.get("sampler", {})
        model = cls(vae, g, den, steps=steps or int(sampler.get("steps", 3)),
                    name=str(root), device=device, env_id=config.get("env_id"), decoder=fast)
        model.context_noise = float(sampler.get("context_noise", 0.0))
        if model.context_noise == NO_CONTEXT and not den.config.context_drop:
            raise ModelFolderError(f"{root}/config.json: sampler context_noise -1 (no context) "
                                   "needs a denoiser trained with context dropout "
                                   "(train_denoiser.py --context-drop)")
        model.folder = str(root)
        return model

    def save_pretrained(self, root: str | os.PathLike) -> None:
        """Write a world-model folder that `from_pretrained` rebuilds exactly."""
        folder = ModelFolder(root)
        folder.save_component("vae", self.vae, self.vae.config)
        if self.g is not None:
            folder.save_component("metadata", self.g, self.g.config)
        folder.save_component("denoiser", self.denoiser, self.denoiser.config)
        if self.decoder is not self.vae:
            folder.save_component(DECODER, self.decoder, self.decoder.config)
        sampler: dict[str, Any] = {"steps": self.steps}
        if self.context_noise:
            sampler["context_noise"] = self.context_noise
        folder.update(env_id=self.env_id, sampler=sampler)

    # -- the dream ------------------------------------------------------------------------

    def _autocast(self) -> Any:
        return torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda")

    @torch.no_grad()
    def start(self, frames: np.ndarray, metadata: np.ndarray, actions: np.ndarray) -> DreamState:
        """Dreams from real frames (B, L, H, W, 3) uint8, their metadata (B, L, M) and the
        actions between them (B, L-1); L >= `context`."""
        B, L = frames.shape[:2]
        if L < self.context:
            raise ValueError(f"a dream starts from at least {self.context} frames, got {L}")
        with self._autocast():
            z = self.vae.encode(torch.from_numpy(np.asarray(frames).reshape(B * L,
                                                                           *frames.shape[2:])))
        z = z.float().reshape(B, L, *z.shape[1:])  # (B, L, C, h, w)
        keep = min(L, self.history)
        meta = torch.as_tensor(np.asarray(metadata), dtype=torch.float32, device=self.device)
        acts = torch.as_tensor(np.asarray(actions), dtype=torch.int64, device=self.device)
        return DreamState(z[:, -keep:], meta[:, -keep:], acts[:, max(0, acts.shape[1] - keep + 1):])

    @torch.no_grad()
    def predict_metadata(self, state: DreamState, actions: Tensor,
                         generator: torch.Generator | None = None) -> Tensor:
        """m_{t+1} .. m_{t+T} (B, T, M) for the T future actions (B, T).

        With `sample_metadata` set and a `generator`, g_phi's classified variables (scores,
        lives) are drawn from its predicted distributions instead of taken as the most likely
        class (`MetadataPredictor.predict`), so rewards come at the rate g_phi gives them.
        """
        meta, lat, acts = state.metadata, state.latents, state.actions
        if self.g is None:  # metadata-ignorant: metadata stay where they are
            return meta[:, -1:].expand(-1, actions.shape[1], -1).clone()
        window = self.g.config.window
        out = []
        for j in range(actions.shape[1]):
            acts = torch.cat([acts, actions[:, j : j + 1]], 1)  # a_{..} .. a_{t+j}
            lat_j = torch.cat([lat, lat[:, -1:]], 1) if j > 0 else lat  # newest known latent
            L = min(window, lat_j.shape[1], meta.shape[1] - 1, acts.shape[1])
            m = self.g.predict(meta[:, -(L + 1):], lat_j[:, -L:], acts[:, -L:],
                               generator if self.sample_metadata else None).float()  # (B, M)
            if self.step_limits is not None:  # the game's rules: m_t - m_{t-1} in [lo, hi]
                m = hold_to_limits(m, meta[:, -1], self.step_limits)
            meta = torch.cat([meta, m[:, None]], 1)
            lat = lat_j
            out.append(m)
        return torch.stack(out, 1)  # (B, T, M)

    @torch.no_grad()
    def step(self, state: DreamState, actions: Tensor, generator: torch.Generator,
             decode: bool = True, metadata: Tensor | None = None
             ) -> tuple[Tensor | None, Tensor, DreamState]:
        """Dream T = frames_per_call steps under `actions` (B, T) int64.

        `metadata`: m_{t+1} .. m_{t+T} (B, T, M) when already predicted (`predict_metadata`),
        so that dreams whose histories differ in length can share one denoiser call.
        Returns frames (B, T, H, W, 3) uint8 (None if not `decode`), metadata (B, T, M) and
        the new state.
        """
        cfg = self.denoiser.config
        K, T = cfg.context, cfg.frames_per_call
        actions = actions.to(self.device, torch.int64)
        if actions.shape[1] != T:
            raise ValueError(f"this model dreams {T} frames per call: pass (B, {T}) actions")
        meta_next = self.predict_metadata(state, actions, generator) if metadata is None \
            else metadata.to(self.device, torch.float32)  # (B, T, M)
        context = state.latents[:, -K:]
        if context.shape[1] < K:  # fewer frames than the context: repeat the oldest
            pad = context[:, :1].expand(-1, K - context.shape[1], -1, -1, -1)
            context = torch.cat([pad, context], 1)
        past = state.actions[:, -(K - 1):] if K > 1 else state.actions[:, :0]
        if past.shape[1] < K - 1:
            past = torch.cat([past.new_zeros(past.shape[0], K - 1 - past.shape[1]), past], 1)
        metadata = torch.cat([state.metadata[:, -1:], meta_next], 1) if cfg.metadata_dim \
            else None
        with self._autocast():
            z = sample(self.denoiser, context, torch.cat([past, actions], 1), metadata,
                       self.steps, generator, self.context_noise)  # (B, T, C, h, w)
        z = z.float()
        frames = None
        if decode:
            B = z.shape[0]
            with self._autocast():
                frames = self.decoder.decode(z.reshape(B * T, *z.shape[2:]))
            frames = frames.reshape(B, T, *frames.shape[1:])
        return frames, meta_next, state.push(z, meta_next, actions, self.history)

    # -- the paired benchmark's Predictor --------------------------------------------------

    @torch.no_grad()
    def rollout(self, frames: np.ndarray, metadata: np.ndarray, past_actions: np.ndarray,
                future_actions: np.ndarray, seed: int) -> np.ndarray:
        """Predict o_{t+1} .. o_{t+L} (B, L, H, W, 3) uint8 from the real context and the
        L future actions, T frames per model call (`rollout_with_metadata`'s frames)."""
        return self.rollout_with_metadata(frames, metadata, past_actions, future_actions,
                                          seed)[0]

    @torch.no_grad()
    def rollout_with_metadata(self, frames: np.ndarray, metadata: np.ndarray,
                              past_actions: np.ndarray, future_actions: np.ndarray, seed: int
                              ) -> tuple[np.ndarray, np.ndarray]:
        """Predict o_{t+1} .. o_{t+L} (B, L, H, W, 3) uint8 and m_{t+1} .. m_{t+L} (B, L, M)
        float32 (raw scale) from the real context and the L future actions, T frames per
        model call, each step on the model's own predictions (closed loop)."""
        state = self.start(frames, metadata, past_actions)
        generator = torch.Generator(self.device).manual_seed(seed)
        acts = torch.as_tensor(np.asarray(future_actions), dtype=torch.int64)
        B, L = acts.shape
        T = self.frames_per_call
        if L % T:  # the last call plans beyond the horizon: hold the last action
            acts = torch.cat([acts, acts[:, -1:].expand(B, T - L % T)], 1)
        out, meta = [], []
        for i in range(0, acts.shape[1], T):
            chunk, m, state = self.step(state, acts[:, i : i + T], generator)
            out.append(chunk.cpu())  # type: ignore[union-attr]
            meta.append(m.float().cpu())  # (B, T, M)
        return torch.cat(out, 1)[:, :L].numpy(), torch.cat(meta, 1)[:, :L].numpy()
