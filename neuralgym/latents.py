"""A dataset encoded once into VAE latents, read back memory-mapped (nanoGPT's prepare.py).

    DIR/latents.npy     (N, C, h, w) float16   normalised latents of every frame, episodes
                                               concatenated in index order; (N, 0, 0, 0) in
                                               a cache of metadata only (no VAE, no frames)
    DIR/metadata.npy    (N, M) float32         m of every frame
    DIR/actions.npy     (N,) int64             the action taken at that frame (-1 at an
                                               episode's last frame)
    DIR/episodes.npy    (E, 3) int64           rows (start, length in frames, is_test)
    DIR/info.json       env id, metadata names, shapes, the VAE it was encoded with

Written by `training/prepare_latents.py` into a temporary folder renamed into place.
Training samples windows that lie inside one episode: K context frames and T target frames.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Windows:
    """A batch of windows: frames i-K+1 .. i are context, i+1 .. i+T are targets."""

    context: np.ndarray  # (B, K, C, h, w) float32 latents
    target: np.ndarray  # (B, T, C, h, w) float32 latents
    metadata: np.ndarray  # (B, K+T, M) float32, m_{i-K+1} .. m_{i+T}
    actions: np.ndarray  # (B, K-1+T) int64, a_{i-K+1} .. a_{i+T-1}: K-1 past, T future
    weight: np.ndarray | None = None  # (B,) float32 loss weights; None: all 1


class LatentCache:
    """Memory-mapped latents of a dataset, with window sampling by split."""

    FILES = ("latents", "metadata", "actions", "episodes")

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / "info.json").exists():
            raise FileNotFoundError(
                f"{self.root} is not a latent cache (no info.json); make one with "
                "`python training/prepare_latents.py --data DATASET --model MODEL_DIR --out DIR`"
            )
        self.info = json.loads((self.root / "info.json").read_text())
        arrays = {}
        for name in self.FILES:
            try:
                arrays[name] = np.load(self.root / f"{name}.npy", mmap_mode="r")
            except (OSError, ValueError) as e:
                raise RuntimeError(
                    f"{self.root / (name + '.npy')} is missing or corrupt ({e}); "
                    "delete the cache and run training/prepare_latents.py again"
                ) from None
        self.latents = arrays["latents"]
        self.metadata = arrays["metadata"]
        self.actions = arrays["actions"]
        self.episodes = np.asarray(arrays["episodes"])

    @staticmethod
    def write(root: str | os.PathLike, latents: np.ndarray | str | os.PathLike,
              metadata: np.ndarray, actions: np.ndarray, episodes: np.ndarray,
              info: dict) -> Path:
        """Write a cache atomically (arrays already in memory or memory-mapped).

        `latents` may also be the path of a finished float16 .npy file on the same file system
        (streamed there with `np.lib.format.open_memmap`); it is moved in, not copied.
        """
        final = Path(root)
        tmp = final.with_name(f".tmp-{final.name}.{os.getpid()}")
        tmp.mkdir(parents=True)
        if isinstance(latents, (str, os.PathLike)):
            os.replace(latents, tmp / "latents.npy")
        else:
            np.save(tmp / "latents.npy", np.asarray(latents, np.float16))
        np.save(tmp / "metadata.npy", np.asarray(metadata, np.float32))
        np.save(tmp / "actions.npy", np.asarray(actions, np.int64))
        np.save(tmp / "episodes.npy", np.asarray(episodes, np.int64).reshape(-1, 3))
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
        if final.exists():
            raise FileExistsError(f"{final} already exists")
        os.rename(tmp, final)
        return final

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.latents.shape[1:])  # type: ignore[return-value]

    @property
    def has_latents(self) -> bool:
        """False for a cache of metadata and actions only (prepare_latents.py without a
        model): a g_phi that reads no frames trains on it, nothing else does."""
        return self.latents.shape[1] > 0

    def require_latents(self, what: str) -> None:
        """A ValueError saying that `what` needs latents, where the cache has none."""
        if not self.has_latents:
            raise ValueError(f"{self.root} holds metadata and actions only (prepared without "
                             f"--model); {what} needs latents: run training/prepare_latents.py "
                             "with --model on a recording with frames")

    def window_starts(self, split: str, context: int, horizon: int) -> np.ndarray:
        """Indices i whose window i-K+1 .. i+T lies inside one episode of the split."""
        test = {"train": 0, "test": 1}
        if split not in (*test, "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        starts = [
            np.arange(s + context - 1, s + n - horizon)
            for s, n, is_test in self.episodes
            if split == "all" or is_test == test[split]
        ]
        idx = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        if len(idx) == 0:
            raise ValueError(
                f"{self.root}: no window of {context} context + {horizon} target frames fits in "
                f"the {split!r} split; record longer episodes"
            )
        return idx

    def change(self, starts: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """(len(starts),) float64: for each window start i, the mean squared latent
        difference between frame i+1 (the window's first target) and frame i (its last
        context frame). Read in chunks of `chunk` frames, so a cache larger than memory works."""
        self.require_latents("the latent change of a window")
        out = np.empty(len(starts))
        for a in range(0, len(starts), chunk):
            i = np.asarray(starts[a:a + chunk])
            last = np.asarray(self.latents[i], np.float32)  # (n, C, h, w)
            first = np.asarray(self.latents[i + 1], np.float32)  # (n, C, h, w)
            out[a:a + len(i)] = ((first - last) ** 2).reshape(len(i), -1).mean(1)
        return out

    def sample(self, starts: np.ndarray, batch: int, context: int, horizon: int,
               rng: np.random.Generator, dtype: type = np.float32,
               cdf: np.ndarray | None = None, reweight: bool = False) -> Windows:
        """`batch` windows at starts drawn from `starts` by `rng`; latents as `dtype`
        (np.float16, the cache's own, spares the CPU a conversion a GPU does faster).
        Uniformly, or by `cdf`: the cumulative probabilities of `starts` (`boosted_cdf`).
        With `cdf` and `reweight`, each window also gets the importance weight that undoes the
        draw, 1 / (N p_i) for N starts and its probability p_i, so that a weighted mean over
        windows drawn by `cdf` has the expectation of the plain mean over uniform ones."""
        weight = None
        if cdf is None:
            i = starts[rng.integers(0, len(starts), batch)]  # (B,)
        else:
            pick = np.searchsorted(cdf, rng.random(batch) * cdf[-1], side="right")
            pick = np.minimum(pick, len(starts) - 1)  # (B,)
            i = starts[pick]  # (B,)
            if reweight:
                p = (cdf[pick] - np.where(pick > 0, cdf[pick - 1], 0.0)) / cdf[-1]  # (B,)
                weight = (1.0 / (len(starts) * p)).astype(np.float32)  # (B,)
        frames = i[:, None] + np.arange(-context + 1, horizon + 1)[None]  # (B, K+T)
        lat = np.asarray(self.latents[frames.reshape(-1)], dtype)
        lat = lat.reshape(batch, context + horizon, *self.latent_shape)
        acts = i[:, None] + np.arange(-context + 1, horizon)[None]  # (B, K-1+T)
        return Windows(
            context=lat[:, :context],
            target=lat[:, context:],
            metadata=np.asarray(self.metadata[frames.reshape(-1)]).reshape(batch, -1,
                                                                          self.metadata.shape[1]),
            actions=np.asarray(self.actions[acts.reshape(-1)]).reshape(batch, -1),
            weight=weight,
        )


def boosted_cdf(values: np.ndarray, top: float, boost: float) -> tuple[np.ndarray, float]:
    """Cumulative sampling probabilities over windows: those whose `values` are in the top
    `top` share (above their (1 - top) quantile) weigh `boost`, the others 1. Returns the
    cumulative probabilities (for `LatentCache.sample(cdf=...)`) and that quantile."""
    if not 0 < top < 1 or not boost > 0:
        raise ValueError(f"need 0 < top < 1 and boost > 0, got top={top}, boost={boost}")
    cut = float(np.quantile(values, 1 - top))
    weights = np.where(values > cut, boost, 1.0)
    return np.cumsum(weights) / weights.sum(), cut
