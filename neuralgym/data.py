"""Recorded episodes and datasets on disk.

A dataset is a folder of episode folders plus an `index.json`:

    DIR/index.json                 env id, metadata names, episodes with lengths and split
    DIR/episodes/<name>/episode.json   what the episode is, and each array file's size and CRC32
    DIR/episodes/<name>/frames.npy     (N+1, H, W, 3) uint8  o_0 .. o_N (o_0 from reset);
                                       (N+1, 0, 0, 3) when recorded without frames
    DIR/episodes/<name>/metadata.npy   (N+1, M) float32      m_0 .. m_N
    DIR/episodes/<name>/actions.npy    (N,) int64            a_t leads from o_t to o_{t+1}
    DIR/episodes/<name>/rewards.npy    (N,) float32
    DIR/episodes/<name>/terminated.npy (N,) bool
    DIR/episodes/<name>/truncated.npy  (N,) bool
    DIR/episodes/<name>/states.npy     (S,) uint8  zlib-compressed emulator states, concatenated
    DIR/episodes/<name>/state_index.npy (S', 3) int64  rows (t, offset, length): restoring the
                                       state of row t shows o_t and m_t

Every write is atomic: an episode is written into a temporary folder that is renamed into
place, and `index.json` is written to a temporary file that is renamed over the old one. A
crash loses at most the episode being written; its leftover temporary folder is removed by
the next writer. Arrays are read back memory-mapped (`np.load(mmap_mode="r")`).

An episode recorded without frames (`agents/record.py --no-frames`) keeps everything else: a
million steps of a game's variables take megabytes where their frames take a hundred
gigabytes. Such episodes train a g_phi that reads no frames; whatever needs the frames (the
VAE, latents, start contexts, paired rollouts) gets them through `frames_of`, which says so.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

ARRAYS = ("frames", "metadata", "actions", "rewards", "terminated", "truncated")
INDEX = "index.json"
TMP_PREFIX = ".tmp-"


class CorruptEpisodeError(ValueError):
    """An episode on disk is truncated, corrupt or incomplete."""


@dataclass
class Episode:
    """One recorded episode (arrays in memory or memory-mapped)."""

    frames: np.ndarray  # (N+1, H, W, 3) uint8
    metadata: np.ndarray  # (N+1, M) float32
    actions: np.ndarray  # (N,) int64
    rewards: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    states: Mapping[int, bytes] = field(default_factory=dict)  # t -> emulator state showing o_t
    info: dict[str, object] = field(default_factory=dict)  # env_id, agent, seed, ...

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def has_frames(self) -> bool:
        """False for an episode recorded without frames (frames of shape (N+1, 0, 0, 3))."""
        return self.frames.shape[1] > 0

    def validate(self) -> None:
        n = len(self.actions)
        shapes = {
            "frames": (self.frames.shape[:1], (n + 1,)),
            "metadata": (self.metadata.shape[:1], (n + 1,)),
            "rewards": (self.rewards.shape, (n,)),
            "terminated": (self.terminated.shape, (n,)),
            "truncated": (self.truncated.shape, (n,)),
        }
        for name, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"episode {name} has length {got}, expected {want} for {n} steps")
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"frames must be (N+1, H, W, 3) uint8, got {self.frames.shape} "
                             f"{self.frames.dtype}")
        if any(not 0 <= t <= n for t in self.states):
            raise ValueError(f"state steps must lie in 0..{n}")


class EpisodeRecorder:
    """Collects one episode step by step; `finish()` turns it into an `Episode`."""

    def __init__(self, obs: np.ndarray, metadata: np.ndarray, state: bytes | None = None,
                 frames: bool = True):
        self.keep_frames = frames  # False: every frame kept as (0, 0, 3), none stored
        self.frames = [self._frame(obs)]
        self.metadata = [np.asarray(metadata, np.float32)]
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.terminated: list[bool] = []
        self.truncated: list[bool] = []
        self.states: dict[int, bytes] = {} if state is None else {0: state}

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, action: int, obs: np.ndarray, metadata: np.ndarray, reward: float,
            terminated: bool, truncated: bool, state: bytes | None = None) -> None:
        self.actions.append(int(action))
        self.frames.append(self._frame(obs))
        self.metadata.append(np.asarray(metadata, np.float32))
        self.rewards.append(float(reward))
        self.terminated.append(bool(terminated))
        self.truncated.append(bool(truncated))
        if state is not None:
            self.states[len(self.actions)] = state

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        frame = np.asarray(obs, np.uint8)
        return frame if self.keep_frames else frame[:0, :0]

    def finish(self, **info: object) -> Episode:
        return Episode(
            frames=np.stack(self.frames),
            metadata=np.stack(self.metadata),
            actions=np.asarray(self.actions, np.int64),
            rewards=np.asarray(self.rewards, np.float32),
            terminated=np.asarray(self.terminated, bool),
            truncated=np.asarray(self.truncated, bool),
            states=dict(self.states),
            info=dict(info),
        )


def frames_of(episode: Episode, name: str) -> np.ndarray:
    """The episode's frames (N+1, H, W, 3), or a ValueError naming episode `name` when it was
    recorded without them."""
    if not episode.has_frames:
        raise ValueError(f"episode {name} was recorded without frames (agents/record.py "
                         "--no-frames): it can train only a g_phi that reads no frames "
                         "(training/prepare_latents.py without --model, then "
                         "train_metadata.py --no-latent-input); record frames for the rest")
    return episode.frames


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` ("w" text, "wb" binary); when the block ends it is
    flushed and renamed into place, and when the block raises it is removed, so `path` holds
    either its old content or the whole new one."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes ('w' or 'wb'), got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file, flushed, renamed into place."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, data: object) -> None:
    """`atomic_write_text` of `data` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def save_episode(episode: Episode, directory: str | os.PathLike) -> Path:
    """Write `episode` atomically to `directory` (which must not exist yet)."""
    episode.validate()
    final = Path(directory)
    if final.exists():
        raise FileExistsError(f"episode folder {final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TMP_PREFIX}{final.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(episode, name))
        blobs = [zlib.compress(episode.states[t], 6) for t in sorted(episode.states)]
        offsets = np.cumsum([0] + [len(b) for b in blobs])
        np.save(tmp / "states.npy", np.frombuffer(b"".join(blobs), np.uint8))
        rows = [(t, offsets[i], len(blobs[i])) for i, t in enumerate(sorted(episode.states))]
        np.save(tmp / "state_index.npy", np.asarray(rows, np.int64).reshape(-1, 3))
        files = {
            p.name: {"bytes": p.stat().st_size, "crc32": _crc32(p)}
            for p in sorted(tmp.glob("*.npy"))
        }
        meta = {**episode.info, "length": len(episode), "files": files}
        (tmp / "episode.json").write_text(json.dumps(meta, indent=1))
        for p in tmp.iterdir():  # flush data before the rename makes the episode visible
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_episode(directory: str | os.PathLike, verify: bool = True, mmap: bool = True) -> Episode:
    """Read an episode; arrays are memory-mapped. `verify` checks sizes and CRC32 checksums.

    Raises `CorruptEpisodeError` naming the file when anything is missing or damaged.
    """
    d = Path(directory)
    hint = f"delete {d} and record it again"
    try:
        meta = json.loads((d / "episode.json").read_text())
    except FileNotFoundError:
        raise CorruptEpisodeError(
            f"{d}: no episode.json, so the episode is incomplete; {hint}"
        ) from None
    except json.JSONDecodeError as e:
        raise CorruptEpisodeError(f"{d / 'episode.json'} is corrupt ({e}); {hint}") from None
    files = meta.get("files", {})
    for name, want in files.items():
        p = d / name
        if not p.exists():
            raise CorruptEpisodeError(f"{p} is missing; {hint}")
        if p.stat().st_size != want["bytes"]:
            raise CorruptEpisodeError(
                f"{p} is truncated or corrupt ({p.stat().st_size} bytes, "
                f"expected {want['bytes']}); {hint}"
            )
        if verify and _crc32(p) != want["crc32"]:
            raise CorruptEpisodeError(f"{p} is corrupt (checksum mismatch); {hint}")
    arrays = {}
    for name in (*ARRAYS, "states", "state_index"):
        try:
            arrays[name] = np.load(d / f"{name}.npy", mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as e:
            raise CorruptEpisodeError(f"{d / (name + '.npy')} cannot be read ({e}); {hint}") \
                from None
    states = _States(arrays.pop("states"), arrays.pop("state_index"))
    info = {k: v for k, v in meta.items() if k != "files"}
    episode = Episode(**arrays, states=states, info=info)  # type: ignore[arg-type]
    try:
        episode.validate()
    except ValueError as e:
        raise CorruptEpisodeError(f"{d}: {e}; {hint}") from None
    return episode


class _States(Mapping[int, bytes]):
    """Emulator states of a stored episode, decompressed when accessed: t -> state bytes."""

    def __init__(self, blob: np.ndarray, index: np.ndarray):
        self._blob = blob
        self._rows = {int(t): (int(o), int(n)) for t, o, n in np.asarray(index)}

    def __getitem__(self, t: int) -> bytes:
        o, n = self._rows[t]
        return zlib.decompress(bytes(self._blob[o : o + n]))

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _split_of(name: str, test_fraction: float) -> str:
    """Deterministic split by episode name: the same episode always lands in the same split."""
    return "test" if zlib.crc32(name.encode()) % 1000 < test_fraction * 1000 else "train"


@dataclass
class EpisodeRef:
    name: str
    length: int
    split: str
    path: Path


class Dataset:
    """The episodes in a dataset folder, with a deterministic train/test split by episode.

    Args:
        root: the dataset folder.
        test_fraction: share of episodes in the test split (by a hash of the episode name;
            if that leaves a split empty and there are at least two episodes, the episode with
            the smallest hash is moved to test).
    """

    def __init__(self, root: str | os.PathLike, test_fraction: float = 0.1):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset folder {self.root} does not exist; record one with "
                f"`python agents/record.py --env ID --out {self.root}`"
            )
        self.test_fraction = test_fraction
        index_path = self.root / INDEX
        if not index_path.exists():
            raise FileNotFoundError(
                f"{index_path} is missing; rebuild it with Dataset.reindex({str(self.root)!r})"
            )
        self.index = json.loads(index_path.read_text())
        self.env_id: str = self.index["env_id"]
        self.metadata_names: list[str] = self.index["metadata_names"]
        names = sorted(self.index["episodes"])
        splits = {n: _split_of(n, test_fraction) for n in names}
        if len(names) >= 2 and "test" not in splits.values():
            splits[min(names, key=lambda n: zlib.crc32(n.encode()))] = "test"
        self.episodes = [
            EpisodeRef(n, int(self.index["episodes"][n]["length"]), splits[n],
                       self.root / "episodes" / n)
            for n in names
        ]

    @staticmethod
    def reindex(root: str | os.PathLike) -> dict:
        """Rebuild `index.json` from the episode folders (removing leftover temp folders)."""
        root = Path(root)
        ep_dir = root / "episodes"
        ep_dir.mkdir(parents=True, exist_ok=True)
        episodes: dict[str, dict] = {}
        env_id, names = None, None
        for d in sorted(ep_dir.iterdir()):
            if d.name.startswith(TMP_PREFIX):
                shutil.rmtree(d, ignore_errors=True)
                continue
            try:
                meta = json.loads((d / "episode.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # incomplete: not part of the dataset
            if env_id is not None and meta.get("env_id") != env_id:
                raise ValueError(f"{d} is from {meta.get('env_id')}, the dataset is {env_id}")
            env_id, names = meta.get("env_id"), meta.get("metadata_names")
            episodes[d.name] = {k: meta[k] for k in ("length", "agent", "seed") if k in meta}
        index = {"env_id": env_id, "metadata_names": names, "episodes": episodes}
        atomic_write_text(root / INDEX, json.dumps(index, indent=1))
        return index

    def __len__(self) -> int:
        return len(self.episodes)

    def split(self, split: str) -> list[EpisodeRef]:
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        return [e for e in self.episodes if split == "all" or e.split == split]

    def load(self, ref: EpisodeRef | str, verify: bool = False) -> Episode:
        name = ref if isinstance(ref, str) else ref.name
        return load_episode(self.root / "episodes" / name, verify=verify)

    def iter_episodes(self, split: str = "all", verify: bool = False) -> Iterator[Episode]:
        for ref in self.split(split):
            yield self.load(ref, verify=verify)

    def num_steps(self, split: str = "all") -> int:
        return sum(e.length for e in self.split(split))


class FrameSampler:
    """Random frames of a dataset split, read from the memory-mapped episodes.

    `sample(n, rng)` -> (n, H, W, 3) uint8. Used to train the VAE.
    """

    def __init__(self, dataset: Dataset, split: str = "train"):
        refs = dataset.split(split)
        if not refs:
            raise ValueError(f"{dataset.root}: the {split!r} split has no episodes")
        self.frames = [frames_of(dataset.load(r), r.name) for r in refs]
        self.offsets = np.cumsum([0] + [len(f) for f in self.frames])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        flat = rng.integers(0, len(self), n)
        ep = np.searchsorted(self.offsets, flat, side="right") - 1
        local = flat - self.offsets[ep]
        return np.stack([self.frames[e][i] for e, i in zip(ep, local, strict=True)])
