"""Episodes on disk: round trips, atomic writes, damage detection, the split, frame sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuralgym.data import (
    CorruptEpisodeError,
    Dataset,
    EpisodeRecorder,
    FrameSampler,
    frames_of,
    load_episode,
    save_episode,
)


def make_episode(n: int = 12, seed: int = 0, env_id: str = "NeuralBreakout-v0",
                 frames: bool = True):
    rng = np.random.default_rng(seed)
    rec = EpisodeRecorder(rng.integers(0, 255, (8, 6, 3), dtype=np.uint8),
                          rng.normal(size=3).astype(np.float32), state=b"s0" * 100,
                          frames=frames)
    for t in range(1, n + 1):
        rec.add(int(rng.integers(4)), rng.integers(0, 255, (8, 6, 3), dtype=np.uint8),
                rng.normal(size=3).astype(np.float32), float(t), t == n, False,
                state=bytes([t]) * 50 if t % 5 == 0 else None)
    return rec.finish(env_id=env_id, metadata_names=["a", "b", "c"], agent="test", seed=seed)


def test_round_trip_is_exact(tmp_path: Path):
    ep = make_episode()
    save_episode(ep, tmp_path / "e")
    back = load_episode(tmp_path / "e")
    for name in ("frames", "metadata", "actions", "rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ep, name))
    assert isinstance(back.frames, np.memmap)  # read memory-mapped
    assert sorted(back.states) == [0, 5, 10]
    assert back.states[5] == bytes([5]) * 50 and back.states[0] == b"s0" * 100
    assert back.info["env_id"] == "NeuralBreakout-v0" and back.info["length"] == 12


def test_save_refuses_to_overwrite_and_leaves_no_temp(tmp_path: Path):
    save_episode(make_episode(), tmp_path / "e")
    with pytest.raises(FileExistsError):
        save_episode(make_episode(seed=1), tmp_path / "e")
    assert [p.name for p in tmp_path.iterdir()] == ["e"]


def test_inconsistent_episode_is_rejected_before_writing(tmp_path: Path):
    ep = make_episode()
    ep.rewards = ep.rewards[:-1]
    with pytest.raises(ValueError, match="rewards"):
        save_episode(ep, tmp_path / "e")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "no-json", "bad-json"])
def test_damaged_episode_is_a_clear_error(tmp_path: Path, damage: str):
    d = save_episode(make_episode(), tmp_path / "e")
    frames = d / "frames.npy"
    if damage == "truncate":
        with open(frames, "r+b") as f:
            f.truncate(frames.stat().st_size - 10)
    elif damage == "flip":
        data = bytearray(frames.read_bytes())
        data[-1] ^= 0xFF
        frames.write_bytes(bytes(data))
    elif damage == "delete":
        frames.unlink()
    elif damage == "no-json":
        (d / "episode.json").unlink()
    else:
        (d / "episode.json").write_text("{not json")
    with pytest.raises(CorruptEpisodeError) as err:
        load_episode(d, verify=True)
    assert str(d) in str(err.value) and "record it again" in str(err.value)


def test_truncated_file_is_caught_without_checksums(tmp_path: Path):
    d = save_episode(make_episode(), tmp_path / "e")
    with open(d / "metadata.npy", "r+b") as f:
        f.truncate(100)
    with pytest.raises(CorruptEpisodeError, match="truncated"):
        load_episode(d, verify=False)


def write_dataset(root: Path, n: int) -> Dataset:
    for k in range(n):
        save_episode(make_episode(seed=k), root / "episodes" / f"ep-{k:03d}")
    Dataset.reindex(root)
    return Dataset(root)


def test_reindex_skips_incomplete_and_removes_temp_folders(tmp_path: Path):
    write_dataset(tmp_path, 3)
    (tmp_path / "episodes" / ".tmp-ep-999.123").mkdir()  # a crash mid-write
    (tmp_path / "episodes" / "half").mkdir()  # no episode.json: never finished
    index = Dataset.reindex(tmp_path)
    assert sorted(index["episodes"]) == ["ep-000", "ep-001", "ep-002"]
    assert not (tmp_path / "episodes" / ".tmp-ep-999.123").exists()
    assert json.loads((tmp_path / "index.json").read_text())["env_id"] == "NeuralBreakout-v0"


def test_reindex_refuses_mixed_games(tmp_path: Path):
    write_dataset(tmp_path, 2)
    save_episode(make_episode(env_id="NeuralPong-v0"), tmp_path / "episodes" / "zz-pong")
    with pytest.raises(ValueError, match="NeuralPong-v0"):
        Dataset.reindex(tmp_path)


def test_split_is_deterministic_by_episode_and_stable_as_data_grows(tmp_path: Path):
    ds = write_dataset(tmp_path / "a", 30)
    test = {e.name for e in ds.split("test")}
    assert 0 < len(test) < 30
    assert {e.name for e in ds.split("train")} | test == {e.name for e in ds.episodes}
    bigger = write_dataset(tmp_path / "b", 40)
    assert test <= {e.name for e in bigger.split("test")}  # old episodes keep their split
    assert ds.num_steps("all") == 30 * 12
    with pytest.raises(ValueError, match="split"):
        ds.split("valid")


def test_two_episodes_always_give_a_test_episode(tmp_path: Path):
    ds = write_dataset(tmp_path, 2)
    assert len(ds.split("test")) == 1 and len(ds.split("train")) == 1


def test_missing_dataset_and_index_are_clear_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="record one"):
        Dataset(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(FileNotFoundError, match="reindex"):
        Dataset(tmp_path / "d")


def test_frame_sampler_draws_real_frames_reproducibly(tmp_path: Path):
    ds = write_dataset(tmp_path, 4)
    sampler = FrameSampler(ds, "all")
    assert len(sampler) == 4 * 13
    a = sampler.sample(16, np.random.default_rng(1))
    b = sampler.sample(16, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    pool = np.concatenate([np.asarray(ds.load(e).frames) for e in ds.episodes])
    for frame in a:
        assert (pool == frame).all(axis=(1, 2, 3)).any()


def test_episode_without_frames_round_trips_and_says_so(tmp_path: Path):
    """An episode recorded without frames keeps the rest exactly; whatever asks for its
    frames (frames_of, the VAE's FrameSampler) gets a ValueError that names it and says why."""
    full, bare = make_episode(seed=3), make_episode(seed=3, frames=False)
    save_episode(bare, tmp_path / "episodes" / "bare")
    back = load_episode(tmp_path / "episodes" / "bare")
    assert back.frames.shape == (13, 0, 0, 3) and not back.has_frames and full.has_frames
    for name in ("metadata", "actions", "rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(back, name), getattr(full, name))
    assert dict(back.states) == dict(full.states)
    np.testing.assert_array_equal(frames_of(full, "full"), full.frames)
    with pytest.raises(ValueError, match="episode bare was recorded without frames"):
        frames_of(back, "bare")
    Dataset.reindex(tmp_path)
    with pytest.raises(ValueError, match="--no-frames"):
        FrameSampler(Dataset(tmp_path), "all")


def test_recorded_real_episode_restarts_bit_exactly(breakout_dataset: Dataset):
    """A recorded Breakout episode: restoring a saved state and replaying the recorded
    actions reproduces the recorded frames."""
    from neuralgym import make_real

    env = make_real(breakout_dataset.env_id).unwrapped
    ep = breakout_dataset.load(breakout_dataset.episodes[0], verify=True)
    t = max(s for s in ep.states if s < len(ep) - 5)
    info = env.set_state(ep.states[t])
    np.testing.assert_array_equal(info["metadata"], ep.metadata[t])
    for k in range(t, len(ep)):
        obs, *_ = env.step(int(ep.actions[k]))
        np.testing.assert_array_equal(obs, ep.frames[k + 1])
    env.close()


def test_atomic_open_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    """atomic_open writes through a temporary file renamed into place: a block that raises
    leaves the old content and no temporary file; "wb" takes bytes (np.savez); other modes
    are refused."""
    from neuralgym.data import atomic_open

    path = tmp_path / "sub" / "a.npz"
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, x=np.arange(3))
    with np.load(path) as z:
        np.testing.assert_array_equal(z["x"], np.arange(3))
    with pytest.raises(RuntimeError, match="midway"), atomic_open(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("midway")
    with np.load(path) as z:  # still the first write
        np.testing.assert_array_equal(z["x"], np.arange(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.npz"]
    with pytest.raises(ValueError, match="atomic_open writes"), atomic_open(path, "a"):
        pass
