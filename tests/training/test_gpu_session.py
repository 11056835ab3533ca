"""training/gpu_session.sh: pipeline stage groups run in the background (one beside the
others, then waited for), polled, and their exports and logs copied out (and, while the run
goes on, its results and PPO learning curves so far); a failing group stops the run and says
so."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "gpu_session.sh"
ENV_ID = "NeuralBreakout-v0"
PONG = "NeuralPong-v0"  # the poll tests' lease: a Pong run's files
TINY = {"DEVICE": "cpu", "START": "none", "SEED": "1", "WORKERS": "1", "LIMIT": "300",
        "VAE_ARGS": "--block-out-channels 4 8 8 --latent-channels 4 --norm-num-groups 2 "
                    "--eval-frames 8 --norm-frames 16"}


def test_groups_run_in_the_background_and_are_polled(tmp_path: Path, run_script) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    env = {**TINY, "WORK": str(work), "OUT": str(out)}
    started = run_script(SCRIPT, "start", ENV_ID, "RECORD_STEPS=120 record", "&VAE_STEPS=1 vae",
                         "wait", "latents export", env=env, check=True)
    assert "started" in started.stdout
    polled = run_script(SCRIPT, "poll", ENV_ID, "600", "--copy", env=env, timeout=700,
                        check=True)
    assert "session: done" in polled.stdout, polled.stdout[-3000:]
    logs = work / ENV_ID / "logs"
    assert (logs / "DONE").exists() and not (logs / "FAILED").exists()
    assert (logs / "group2.log").read_text().rstrip().endswith("[done]")  # the background vae
    assert (work / ENV_ID / "latents").is_dir()  # the group after "wait" saw the vae
    assert {"breakout-model.tgz", "breakout-results.tgz"} <= {p.name for p in out.iterdir()}
    with tarfile.open(out / "logs.tgz") as tar:
        assert {"session.log", "group2.log"} <= {Path(n).name for n in tar.getnames()}


def test_a_failing_group_stops_the_run(tmp_path: Path, run_script) -> None:
    env = {**TINY, "WORK": str(tmp_path / "work")}
    run_script(SCRIPT, "start", ENV_ID, "no-such-stage", "record", env=env, check=True)
    polled = run_script(SCRIPT, "poll", ENV_ID, "120", env=env, timeout=200, check=True)
    assert "session: failed" in polled.stdout
    assert "unknown stage no-such-stage" in polled.stdout
    assert not (tmp_path / "work" / ENV_ID / "data").exists()  # "record" never ran


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """$WORK/ENV_ID as a lease leaves it midway: logs, an export, results, PPO files."""
    root = tmp_path / "work" / PONG
    for sub in ("logs", "out", "results", "ppo"):
        (root / sub).mkdir(parents=True)
    (root / "logs" / "session.log").write_text("[session +1s] group 1: setup\n")
    (root / "out" / "pong-model.tgz").write_bytes(b"model archive")
    (root / "results" / "metadata_eval-start.json").write_text('{"steps": 1}')
    (root / "results" / "ppo-real.zip").write_bytes(b"policy")  # an export's copy
    (root / "ppo" / "real.curve.csv").write_text("step,return,n,seconds\n16,-21,1,3\n")
    (root / "ppo" / "real.zip").write_bytes(b"policy")
    (root / "ppo" / "real.log").write_text("BrokenPipeError: [Errno 32] Broken pipe\n")
    return root


def poll(run_script, root: Path, out: Path):
    out.mkdir()
    return run_script(SCRIPT, "poll", PONG, "0", "--copy",
                      env={"WORK": str(root.parent), "OUT": str(out)}, check=True)


def test_poll_copy_brings_back_a_running_run_s_results(run_script, run_dir: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = poll(run_script, run_dir, out)
    assert "session: running" in r.stdout and "group 1: setup" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["logs.tgz", "pong-model.tgz",
                                                     "pong-partial.tgz"]
    with tarfile.open(out / "pong-partial.tgz") as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
        assert tar.extractfile("ppo/real.curve.csv").read().startswith(b"step,return")
    # the results and the learning curves, not the PPO models (too big to bring back)
    assert {"results/metadata_eval-start.json", "ppo/real.curve.csv", "ppo/real.log"} <= names
    assert not any(n.endswith(".zip") for n in names)


def test_poll_copy_of_a_failed_run_brings_back_its_results(run_script, run_dir: Path,
                                                          tmp_path: Path) -> None:
    """A failed group ends the run before its export: the results before it still come back."""
    (run_dir / "logs" / "FAILED").touch()
    out = tmp_path / "out"
    r = poll(run_script, run_dir, out)
    assert "session: failed" in r.stdout
    with tarfile.open(out / "pong-partial.tgz") as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    assert {"results/metadata_eval-start.json", "ppo/real.curve.csv"} <= names


def test_poll_copy_of_a_finished_run_leaves_the_partial_archive_out(
        run_script, run_dir: Path, tmp_path: Path) -> None:
    (run_dir / "logs" / "DONE").touch()  # its export has everything
    out = tmp_path / "out"
    r = poll(run_script, run_dir, out)
    assert "session: done" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["logs.tgz", "pong-model.tgz"]


def test_partial_archive_splits_into_pieces_above_15_mib(run_script, run_dir: Path,
                                                         tmp_path: Path) -> None:
    """$OUT takes files of at most 16 MiB: a large archive comes back in .partN pieces."""
    blob = run_dir / "results" / "rewards-random.trace.npz"
    blob.write_bytes(os.urandom(16 * 2**20))  # incompressible
    out = tmp_path / "out"
    poll(run_script, run_dir, out)
    parts = sorted(p for p in out.iterdir() if p.name.startswith("pong-partial.tgz"))
    assert [p.name for p in parts] == ["pong-partial.tgz.part0", "pong-partial.tgz.part1"]
    assert all(p.stat().st_size <= 15 * 2**20 for p in parts)
    whole = tmp_path / "whole.tgz"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(whole) as tar:
        assert tar.getmember("results/rewards-random.trace.npz").size == 16 * 2**20


def test_poll_all_waits_on_the_running_game_and_names_each_game_s_logs(
        run_script, run_dir: Path, tmp_path: Path) -> None:
    """Two games' runs on one host: a finished Breakout run and the running Pong run. The
    running one is polled first (its wait), then the other; each game's logs come back as
    <game>-logs.tgz, beside the exports and the running run's partial archive; a game with no
    run on the host is passed over."""
    done = tmp_path / "work" / ENV_ID
    (done / "logs").mkdir(parents=True)
    (done / "logs" / "session.log").write_text("[session +9s] done\n")
    (done / "logs" / "DONE").touch()
    out = tmp_path / "out"
    out.mkdir()
    r = run_script(SCRIPT, "poll-all", "0", ENV_ID, "NeuralDemonAttack-v0", PONG,
                   env={"WORK": str(tmp_path / "work"), "OUT": str(out)}, check=True)
    assert r.stdout.index("session: running") < r.stdout.index("session: done")
    assert sorted(p.name for p in out.iterdir()) == [
        "breakout-logs.tgz", "pong-logs.tgz", "pong-model.tgz", "pong-partial.tgz"]
    with tarfile.open(out / "breakout-logs.tgz") as tar:
        assert "./DONE" in tar.getnames()


def test_poll_all_with_no_run_on_the_host_says_so(run_script, tmp_path: Path) -> None:
    """A poll-all whose games have no run under $WORK (WORK not set in this call) fails with a
    message, instead of printing nothing."""
    out = tmp_path / "out"
    out.mkdir()
    r = run_script(SCRIPT, "poll-all", "0", ENV_ID, PONG,
                   env={"WORK": str(tmp_path / "empty"), "OUT": str(out)})
    assert r.returncode == 1 and "no run of" in r.stderr and "set WORK" in r.stderr
    assert not list(out.iterdir())
