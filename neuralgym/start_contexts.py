"""Start contexts: the real frames a dream starts from, shipped inside the world-model folder.

    DIR/start_contexts.safetensors
        frames    (N, L, H, W, 3) uint8    o_{t-L+1} .. o_t of N recorded steps t
        metadata  (N, L, M)       float32  m_{t-L+1} .. m_t
        actions   (N, L-1)        int64    a_{t-L+1} .. a_{t-1}, the actions between the frames
        header metadata: env_id, metadata_names (JSON list), source (where they came from)

`NeuralRetroEnv.reset()` without options picks one of the N with the env's `np_random`.
`training/make_start_contexts.py` writes the file from a recorded dataset. Every write is
atomic (a temporary file renamed into place); reading says what is missing or damaged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from neuralgym.data import Dataset, Episode, frames_of

FILENAME = "start_contexts.safetensors"
ARRAYS = ("frames", "metadata", "actions")


class StartContextsError(RuntimeError):
    """A start-contexts file that is missing, corrupt or does not fit the model."""


@dataclass
class StartContexts:
    """N real contexts of L frames each (see the module docstring for the shapes)."""

    frames: np.ndarray  # (N, L, H, W, 3) uint8
    metadata: np.ndarray  # (N, L, M) float32
    actions: np.ndarray  # (N, L-1) int64
    env_id: str = ""
    metadata_names: tuple[str, ...] = ()
    source: str = ""
    info: dict[str, str] = field(default_factory=dict)  # any other header entries

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def length(self) -> int:
        """L, the number of frames per context."""
        return int(self.frames.shape[1])

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Context i: frames (L, H, W, 3), metadata (L, M), actions (L-1,)."""
        return self.frames[i], self.metadata[i], self.actions[i]

    def validate(self) -> None:
        """Raise a ValueError naming the array whose shape or dtype is wrong."""
        f, m, a = self.frames, self.metadata, self.actions
        if f.dtype != np.uint8 or f.ndim != 5 or f.shape[-1] != 3:
            raise ValueError(f"frames must be (N, L, H, W, 3) uint8, got {f.shape} {f.dtype}")
        N, L = f.shape[:2]
        if N < 1 or L < 1:
            raise ValueError(f"start contexts need N >= 1 contexts of L >= 1 frames, got {f.shape}")
        if m.dtype != np.float32 or m.ndim != 3 or m.shape[:2] != (N, L):
            raise ValueError(f"metadata must be ({N}, {L}, M) float32, got {m.shape} {m.dtype}")
        if a.dtype != np.int64 or a.shape != (N, L - 1):
            raise ValueError(f"actions must be ({N}, {L - 1}) int64, got {a.shape} {a.dtype}")
        if self.metadata_names and len(self.metadata_names) != m.shape[2]:
            raise ValueError(f"{len(self.metadata_names)} metadata names for {m.shape[2]} "
                             "metadata values")


def start_contexts_path(root: str | os.PathLike) -> Path:
    return Path(root) / FILENAME


def has_start_contexts(root: str | os.PathLike) -> bool:
    return start_contexts_path(root).exists()


def save_start_contexts(root: str | os.PathLike, contexts: StartContexts) -> Path:
    """Write `DIR/start_contexts.safetensors` atomically; returns its path."""
    contexts.validate()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = start_contexts_path(root)
    header = {**contexts.info, "env_id": contexts.env_id,
              "metadata_names": json.dumps(list(contexts.metadata_names)),
              "source": contexts.source}
    tmp = root / f".tmp-{FILENAME}.{os.getpid()}"
    try:
        save_file({name: np.ascontiguousarray(getattr(contexts, name)) for name in ARRAYS},
                  tmp, metadata=header)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_start_contexts(root: str | os.PathLike) -> StartContexts:
    """Read `DIR/start_contexts.safetensors`, or raise a StartContextsError saying what is
    wrong and how to make the file."""
    path = start_contexts_path(root)
    hint = (f"write it with `python training/make_start_contexts.py --data DATASET "
            f"--model {Path(root)}`")
    if not path.exists():
        raise StartContextsError(f"{path} is missing; {hint}")
    try:
        arrays = load_file(path)
        with safe_open(str(path), framework="numpy") as f:
            header = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise StartContextsError(f"{path} is corrupt or truncated ({e}); {hint}") from None
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise StartContextsError(f"{path} has no {', '.join(missing)} array; {hint}")
    try:
        names = tuple(json.loads(header.pop("metadata_names", "[]")))
    except json.JSONDecodeError as e:
        raise StartContextsError(f"{path}: corrupt metadata_names in the header ({e})") from None
    contexts = StartContexts(
        **{name: arrays[name] for name in ARRAYS}, env_id=header.pop("env_id", ""),
        metadata_names=names, source=header.pop("source", ""), info=header)
    try:
        contexts.validate()
    except ValueError as e:
        raise StartContextsError(f"{path}: {e}; {hint}") from None
    return contexts


def spread_steps(lengths: list[int], length: int, count: int,
                 rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` (episode, step t) pairs evenly spread over every step t >= length-1 of the
    episodes (episode e has lengths[e] steps, so frames 0 .. lengths[e]); one random offset
    within the spacing. Fewer pairs when there are fewer such steps."""
    valid = [max(0, n + 1 - (length - 1)) for n in lengths]  # steps t = length-1 .. n
    total = sum(valid)
    if total == 0:
        return []
    count = min(count, total)
    flat = np.floor((np.arange(count) + rng.random()) * total / count).astype(np.int64)
    offsets = np.cumsum([0, *valid])
    out = []
    for k in flat:
        e = int(np.searchsorted(offsets, k, side="right") - 1)
        out.append((e, int(k - offsets[e]) + length - 1))
    return out


def contexts_from_dataset(dataset: Dataset, length: int, count: int, split: str = "train",
                          seed: int = 0) -> StartContexts:
    """Start contexts of `length` frames ending at `count` evenly spread steps of the split."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    refs = dataset.split(split)
    if not refs:
        raise ValueError(f"{dataset.root}: the {split!r} split has no episodes")
    picks = spread_steps([r.length for r in refs], length, count, np.random.default_rng(seed))
    if not picks:
        raise ValueError(f"{dataset.root}: no episode of the {split!r} split has the "
                         f"{length} frames a start context needs")
    frames, metadata, actions = [], [], []
    episodes: dict[int, Episode] = {}
    for e, t in picks:
        if e not in episodes:
            episodes[e] = dataset.load(refs[e])
        ep = episodes[e]
        frames.append(np.asarray(frames_of(ep, refs[e].name)[t - length + 1 : t + 1]))
        metadata.append(np.asarray(ep.metadata[t - length + 1 : t + 1]))
        actions.append(np.asarray(ep.actions[t - length + 1 : t]))
    return StartContexts(
        frames=np.stack(frames).astype(np.uint8),
        metadata=np.stack(metadata).astype(np.float32),
        actions=np.stack(actions).astype(np.int64).reshape(len(picks), length - 1),
        env_id=dataset.env_id or "",
        metadata_names=tuple(dataset.metadata_names or ()),
        source=f"{dataset.root} split={split} seed={seed} steps=" + ",".join(
            f"{refs[e].name}:{t}" for e, t in picks),
    )
