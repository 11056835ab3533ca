"""Subprocess smoke runs of agents/record.py: datasets, resume, determinism, bad inputs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from neuralgym.data import INDEX, Dataset, load_episode
from neuralgym.games import get_spec

SCRIPT = "agents/record.py"


@pytest.fixture(scope="module")
def record(run_script):
    """`record(out, *args, env="NeuralBreakout-v0", workers=2, check=True)`: agents/record.py
    writing to `out`."""

    def record(out: Path, *args: str, env: str = "NeuralBreakout-v0", workers: int = 2,
               check: bool = True):
        return run_script(SCRIPT, "--env", env, "--out", out, "--workers", workers, *args,
                          check=check)

    return record


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (mtime_ns, bytes) of every file under root."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file()}


def check_dataset(out: Path, env: str, agent: str, steps: int, state_every: int) -> Dataset:
    ds = Dataset(out)
    assert ds.env_id == env
    assert ds.metadata_names == list(get_spec(env).metadata_names)
    assert ds.num_steps() == steps  # budgets are exact; at least --steps
    assert len(ds.split("train")) + len(ds.split("test")) == len(ds)
    workers = set()
    for ref in ds.episodes:
        m = re.fullmatch(rf"{agent}-s0-w(\d\d)-(\d{{5}})", ref.name)
        assert m, ref.name
        workers.add(int(m.group(1)))
        ep = load_episode(ref.path, verify=True)
        n = len(ep)
        assert n == ref.length > 0
        assert ep.frames.shape == (n + 1, *get_spec(env).obs_shape)
        assert ep.frames.dtype == np.uint8
        assert ep.info["agent"] == agent and ep.info["state_every"] == state_every
        assert ep.terminated[-1] or ep.truncated[-1]
        want = {t for t in range(0, n + 1, state_every) if t == 0 or t < n or not ep.terminated[-1]}
        assert set(ep.states) == want
        assert all(len(ep.states[t]) > 0 for t in want)
    assert workers == {0, 1}
    return ds


@pytest.mark.parametrize(
    "env,agent,steps",
    [
        ("NeuralBreakout-v0", "random", 300),
        ("NeuralBreakout-v0", "sticky-random", 300),
        ("NeuralPong-v0", "scripted", 300),
        ("NeuralAirstriker-v0", "random", 120),  # 224x320 frames: keep it small
    ],
)
def test_record_smoke(tmp_path: Path, env: str, agent: str, steps: int, record) -> None:
    out = tmp_path / "data"
    r = record(out, "--agent", agent, "--steps", str(steps), "--seed", "0",
               "--max-episode-steps", "50", "--state-every", "20", env=env)
    assert (out / INDEX).exists()
    ds = check_dataset(out, env, agent, steps, 20)
    assert len(ds) >= 4  # at most 50 steps an episode, 2 workers
    assert f"{len(ds)} episodes, {steps} steps" in r.stdout
    assert "train:" in r.stdout and "test:" in r.stdout


def test_resume(tmp_path: Path, record) -> None:
    out = tmp_path / "data"
    args = ("--steps", "200", "--max-episode-steps", "60", "--state-every", "10")
    record(out, *args)
    before = files(out / "episodes")
    names_before = {p.split("/")[0] for p in before}
    leftover = out / "episodes" / ".tmp-random-s0-w00-00099.12345"  # a crash mid-save
    leftover.mkdir()
    (leftover / "frames.npy").write_bytes(b"partial")

    record(out, "--steps", "500", *args[2:])
    after = files(out / "episodes")
    assert {p: after[p] for p in before} == before  # old episodes untouched
    assert not leftover.exists()
    ds = check_dataset(out, "NeuralBreakout-v0", "random", 500, 10)
    new = {e.name for e in ds.episodes} - names_before
    assert new
    for w in (0, 1):  # running numbers continue without gaps
        numbers = sorted(int(e.name[-5:]) for e in ds.episodes if f"-w{w:02d}-" in e.name)
        assert numbers == list(range(len(numbers)))

    r = record(out, "--steps", "500", *args[2:])  # nothing left to do
    assert files(out / "episodes") == after
    assert "already holds 500 steps" in r.stdout

    # A crash loses the episode in progress; the rerun records exactly that episode again.
    last = max((e for e in ds.episodes if "-w01-" in e.name), key=lambda e: e.name)
    kept = load_episode(last.path, mmap=False)
    shutil.rmtree(last.path)
    record(out, "--steps", "500", *args[2:])
    again = load_episode(last.path)
    np.testing.assert_array_equal(again.frames, kept.frames)
    np.testing.assert_array_equal(again.actions, kept.actions)
    assert Dataset(out).num_steps() == 500


def test_same_seed_same_data(tmp_path: Path, record) -> None:
    args = ("--agent", "sticky-random", "--steps", "200", "--max-episode-steps", "80")
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        record(tmp_path / name, *args, "--seed", seed)
    a, b, c = (Dataset(tmp_path / n) for n in "abc")
    assert [e.name for e in a.episodes] == [e.name for e in b.episodes]
    for ea, eb in zip(a.iter_episodes(), b.iter_episodes(), strict=True):
        np.testing.assert_array_equal(ea.frames, eb.frames)
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.metadata, eb.metadata)
        assert dict(ea.states) == dict(eb.states)
    ea, ec = next(a.iter_episodes()), next(c.iter_episodes())
    assert not np.array_equal(ea.actions[:20], ec.actions[:20])


@pytest.mark.parametrize(
    "args,message",
    [
        (("--env", "NeuralNope-v0"), "unknown env id 'NeuralNope-v0'"),
        (("--agent", "ppo"), "--agent ppo needs --ppo-model"),
        (("--agent", "ppo", "--ppo-model", "missing.zip"), "agents/train_ppo.py"),
        (("--ppo-model", "missing.zip"), "only for --agent ppo"),
        (("--steps", "0"), "must be >= 1"),
        (("--agent", "scripted"), "no scripted player for NeuralBreakout-v0"),
    ],
)
def test_bad_inputs(tmp_path: Path, args: tuple[str, ...], message: str, run_script) -> None:
    out = tmp_path / "data"
    r = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--out", out, "--steps", "50", *args,
                   timeout=120)
    assert r.returncode == 1
    assert message in r.stderr and "record.py: error:" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_unknown_agent_is_a_usage_error(tmp_path: Path, record) -> None:
    r = record(tmp_path / "data", "--agent", "greedy", check=False)
    assert r.returncode == 2 and "invalid choice: 'greedy'" in r.stderr


def test_missing_rom(tmp_path: Path, record) -> None:
    import stable_retro

    try:
        stable_retro.data.get_romfile_path("SonicTheHedgehog-Genesis-v0")
        pytest.skip("a Sonic ROM is imported here")
    except FileNotFoundError:
        pass
    r = record(tmp_path / "data", "--steps", "10", env="NeuralSonic-v0", check=False)
    assert r.returncode == 1
    assert "stable_retro.import" in r.stderr and "Traceback" not in r.stderr


def test_folder_of_another_game_or_run(tmp_path: Path, record) -> None:
    out = tmp_path / "data"
    record(out, "--steps", "40")
    before, index = files(out / "episodes"), (out / INDEX).read_text()
    r = record(out, "--steps", "40", env="NeuralPong-v0", check=False)
    assert r.returncode == 1
    assert "holds episodes of NeuralBreakout-v0, not NeuralPong-v0" in r.stderr
    assert "Traceback" not in r.stderr
    r = record(out, "--steps", "80", workers=1, check=False)  # resumed with fewer workers
    assert r.returncode == 1 and "same --workers" in r.stderr
    assert files(out / "episodes") == before and (out / INDEX).read_text() == index


def test_one_writer_per_folder(tmp_path: Path, record) -> None:
    import fcntl

    out = tmp_path / "data"
    out.mkdir()
    with open(out / ".record.lock", "w") as f:  # as a record.py still running holds it
        fcntl.flock(f, fcntl.LOCK_EX)
        r = record(out, "--steps", "20", check=False)
    assert r.returncode == 1 and "another record.py is writing to" in r.stderr
    assert not (out / "episodes").exists()


def test_no_frames_keeps_the_rest(tmp_path: Path, record) -> None:
    """--no-frames: episodes named apart, frames (N+1, 0, 0, 3), and the same variables,
    actions and states as the recording with frames of the same seed."""
    args = ("--agent", "sticky-random", "--steps", "200", "--max-episode-steps", "80",
            "--seed", "5")
    record(tmp_path / "with", *args)
    record(tmp_path / "without", *args, "--no-frames")
    a, b = Dataset(tmp_path / "with"), Dataset(tmp_path / "without")
    assert [e.name.replace("-noframes", "") for e in b.episodes] == [e.name for e in a.episodes]
    assert all("-noframes-" in e.name for e in b.episodes)
    for ea, eb in zip(a.iter_episodes(), b.iter_episodes(), strict=True):
        assert ea.has_frames and not eb.has_frames
        assert eb.frames.shape == (len(ea) + 1, 0, 0, 3)
        np.testing.assert_array_equal(ea.metadata, eb.metadata)
        np.testing.assert_array_equal(ea.actions, eb.actions)
        assert dict(ea.states) == dict(eb.states)
    assert sum(p.stat().st_size for p in (tmp_path / "without").rglob("*.npy")) < \
        sum(p.stat().st_size for p in (tmp_path / "with").rglob("*.npy")) / 20
