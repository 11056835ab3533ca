"""training/gpu_session.sh poll --copy: what a device call brings back of a run in progress
(exports, logs, and the results and PPO learning curves so far) and of a finished one."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

ENV_ID = "NeuralPong-v0"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """$WORK/ENV_ID as a lease leaves it midway: logs, an export, results, PPO files."""
    root = tmp_path / "work" / ENV_ID
    for sub in ("logs", "out", "results", "ppo"):
        (root / sub).mkdir(parents=True)
    (root / "logs" / "session.log").write_text("[session +1s] group 1: setup\n")
    (root / "out" / "pong-model.tgz").write_bytes(b"model archive")
    (root / "results" / "metadata_eval-start.json").write_text('{"steps": 1}')
    (root / "results" / "ppo-real.zip").write_bytes(b"policy")  # an export's copy
    (root / "ppo" / "real.curve.csv").write_text("step,return,n,seconds\n16,-21,1,3\n")
    (root / "ppo" / "real.zip").write_bytes(b"policy")
    return root


def poll(run_script, root: Path, out: Path):
    out.mkdir()
    return run_script("training/gpu_session.sh", "poll", ENV_ID, "0", "--copy",
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
    assert {"results/metadata_eval-start.json", "ppo/real.curve.csv"} <= names
    assert not any(n.endswith(".zip") for n in names)


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


def test_ppo_eval_scores_only_the_named_policies(run_script, tmp_path: Path) -> None:
    """PPO_EVAL_POLICIES: a lease that trained only on the real game scores that agent and
    random play, and plots that one learning curve."""
    root = tmp_path / "work" / ENV_ID
    run_script("agents/train_ppo.py", "--env", ENV_ID, "--steps", "64", "--n-envs", "2",
               "--n-steps", "32", "--device", "cpu", "--out", root / "ppo" / "real.zip",
               check=True)
    env = {"WORK": str(root.parent), "OUT": str(tmp_path / "out"), "WORKERS": "2",
           "EVAL_EPISODES": "1", "PPO_EVAL_POLICIES": "real random"}
    run_script("training/gpu_pipeline.sh", ENV_ID, "ppo-eval", env=env, check=True)
    results = root / "results"
    assert sorted(p.name for p in results.iterdir()) == [
        "ppo-curves.png", "ppo-random.json", "ppo-real.json", "real.curve.csv"]
    real = json.loads((results / "ppo-real.json").read_text())
    assert real["episodes"] == 1 and real["policy"].endswith("real.zip")
    # a policy it was not asked for, but whose model is missing, is an error
    env["PPO_EVAL_POLICIES"] = "dream"
    r = run_script("training/gpu_pipeline.sh", ENV_ID, "ppo-eval", env=env)
    assert r.returncode != 0
