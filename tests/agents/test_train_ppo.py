"""Subprocess smoke runs of agents/train_ppo.py (real game and dream), recording with the
model it writes, and the dream-trained model scored in the real game."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuralgym.data import Dataset, load_episode

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, run_script) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ppo") / "models" / "breakout.zip"
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--steps", "256",
                   "--n-envs", "2", "--n-steps", "64", "--out", str(out), check=True)
    return out, r.stdout


def read_curve(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_model(trained: tuple[Path, str]) -> None:
    out, stdout = trained
    assert out.is_file() and out.stat().st_size > 0
    # no temp file left; the learning curve beside the model
    assert sorted(p.name for p in out.parent.iterdir()) == ["breakout.curve.csv", out.name]
    assert "mean episode return" in stdout and "the real game" in stdout
    # (256 steps may end no Breakout episode: the curve may have its header only)
    header = out.with_suffix(".curve.csv").read_text().splitlines()[0]
    assert header == "step,mean_return,episodes,wall_s"


def test_record_with_trained_model(trained: tuple[Path, str], tmp_path: Path, run_script) -> None:
    model, _ = trained
    data = tmp_path / "data"
    run_script("agents/record.py", "--env", "NeuralBreakout-v0", "--agent", "ppo", "--ppo-model",
               str(model), "--steps", "100", "--workers", "2", "--out", str(data), check=True)
    ds = Dataset(data)
    assert ds.num_steps() == 100 and all(e.name.startswith(f"ppo-{model.stem}-s0-w")
                                        for e in ds.episodes)
    ep = load_episode(ds.episodes[0].path)
    assert ep.info["agent"] == "ppo" and ep.info["ppo_model"] == str(model)
    assert len(set(ep.actions.tolist())) > 1  # sampled, not one greedy action


def test_record_with_model_of_another_game(trained: tuple[Path, str], tmp_path: Path,
                                           run_script) -> None:
    """A worker's failure stops the run with the worker's message, not a traceback."""
    model, _ = trained
    r = run_script("agents/record.py", "--env", "NeuralPong-v0", "--agent", "ppo", "--ppo-model",
                   str(model), "--steps", "40", "--workers", "2", "--out", str(tmp_path / "d"))
    assert r.returncode == 1
    assert "Discrete(4)" in r.stderr and "Discrete(6)" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (("--env", "NeuralNope-v0", "--out", "m.zip"), "unknown env id"),
        (("--env", "NeuralBreakout-v0", "--out", "model.pt"), "must end in .zip"),
        (("--env", "NeuralBreakout-v0", "--cuda-graphs", "--out", "m.zip"),
         "are for the dream; pass --dream DIR"),
        (("--env", "NeuralBreakout-v0", "--bf16-weights", "--out", "m.zip"),
         "are for the dream; pass --dream DIR"),
        (("--env", "NeuralBreakout-v0", "--sample-metadata", "--out", "m.zip"),
         "are for the dream; pass --dream DIR"),
    ],
)
def test_bad_inputs(tmp_path: Path, args: tuple[str, ...], message: str, run_script) -> None:
    r = run_script("agents/train_ppo.py", *args[:-1], str(tmp_path / args[-1]), "--steps", "64")
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())


def test_max_seconds_stops_at_a_rollout_end(tmp_path: Path, run_script) -> None:
    """A time cap far below what --steps needs: the run stops after its first rollout's update
    and still writes the model and its curve."""
    out = tmp_path / "capped.zip"
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--steps", "1000000",
                   "--n-envs", "1", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
                   "--max-seconds", "0.001", "--out", str(out), check=True)
    assert out.is_file()
    assert "stopped after 0.001 s (--max-seconds), at step 33 of 1000000" in r.stdout
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--max-seconds", "-1",
                   "--out", str(tmp_path / "bad.zip"))
    assert r.returncode == 1 and "--max-seconds and --save-every must be >= 0" in r.stderr


SMALL = ("--env", "NeuralBreakout-v0", "--n-envs", "1", "--n-steps", "16", "--batch-size", "16",
         "--n-epochs", "1")


def saved_steps(path: Path) -> int:
    from stable_baselines3 import PPO

    return int(PPO.load(path, device="cpu").num_timesteps)


def test_interrupted_training_resumes(tmp_path: Path, run_script) -> None:
    """A run killed mid-way leaves its last --save-every checkpoint; --resume continues it to
    --steps in all, appending to the learning curve, and a model already at --steps is left
    alone."""
    out = tmp_path / "ppo.zip"
    command = [sys.executable, "agents/train_ppo.py", *SMALL, "--steps", "1000000",
               "--save-every", "0.001", "--out", str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not out.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert out.is_file(), "no checkpoint written before the kill"
    done = saved_steps(out)  # the checkpoint is whole (written atomically)
    assert 16 <= done < 1_000_000 and done % 16 == 0
    # a kill mid-save can leave a temp file (never a broken model); a resume removes it, and
    # never the temp of a live process
    (tmp_path / f".tmp-{proc.pid}-ppo.zip").write_bytes(b"partial")
    live = tmp_path / f".tmp-{os.getpid()}-ppo.zip"  # of a live process (this test's)
    live.write_bytes(b"partial")
    curve = out.with_suffix(".curve.csv")
    header = curve.read_text().splitlines()[0]

    r = run_script("agents/train_ppo.py", *SMALL, "--steps", str(done + 32), "--resume",
                   "--out", str(out), check=True)
    assert f"resuming {out} at step {done}" in r.stdout
    assert saved_steps(out) == done + 32
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == [live.name]
    lines = curve.read_text().splitlines()
    assert lines[0] == header and lines.count(header) == 1  # appended, not started afresh

    before = out.read_bytes()
    r = run_script("agents/train_ppo.py", *SMALL, "--steps", str(done + 32), "--resume",
                   "--out", str(out), check=True)
    assert "--steps" in r.stdout and "nothing to do" in r.stdout
    assert out.read_bytes() == before


def test_resume_without_a_model_starts_afresh(tmp_path: Path, run_script) -> None:
    out = tmp_path / "new.zip"
    r = run_script("agents/train_ppo.py", *SMALL, "--steps", "16", "--resume", "--out", str(out),
                   check=True)
    assert "resuming" not in r.stdout and saved_steps(out) == 16


def test_resume_of_a_corrupt_model_is_refused(tmp_path: Path, run_script) -> None:
    out = tmp_path / "broken.zip"
    out.write_bytes(b"not a zip")
    r = run_script("agents/train_ppo.py", *SMALL, "--steps", "16", "--resume", "--out", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"--resume: cannot continue {out}" in r.stderr and "move it away" in r.stderr
    assert out.read_bytes() == b"not a zip"  # left as it was


# -- inside the dream -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dream_trained(dream_model_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                  run_script) -> tuple[Path, str]:
    """PPO trained in the tiny world model with start contexts (conftest's dream_model_dir),
    its lives drawn from g_phi's distribution (--sample-metadata)."""
    out = tmp_path_factory.mktemp("ppo-dream") / "models" / "dream.zip"
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--dream", dream_model_dir,
                   "--steps", "128", "--n-envs", "2", "--n-steps", "32", "--batch-size", "32",
                   "--device", "cpu", "--max-episode-steps", "20", "--sample-metadata",
                   "--out", str(out), check=True)
    return out, r.stdout


def test_train_in_the_dream(dream_trained: tuple[Path, str]) -> None:
    out, stdout = dream_trained
    assert sorted(p.name for p in out.parent.iterdir()) == ["dream.curve.csv", "dream.zip"]
    assert "in the dream" in stdout and "mean episode return" in stdout
    rows = read_curve(out.with_suffix(".curve.csv"))
    # 2 rollouts of 2 x 32 steps; dream episodes end after at most 20 steps
    assert [int(r["step"]) for r in rows] == [64, 128]
    assert all(int(r["episodes"]) >= 2 and np.isfinite(float(r["mean_return"])) for r in rows)


def test_dream_model_plays_like_a_real_game_model(dream_trained: tuple[Path, str]) -> None:
    """PPOPolicy loads it unchanged: same observation (4, 84, 84), the game's actions."""
    from neuralgym.policies import PPOPolicy

    policy = PPOPolicy(dream_trained[0], n_actions=4)
    policy.reset(0)
    frame = np.zeros((210, 160, 3), np.uint8)
    assert 0 <= policy(frame, {}) < 4


def test_dream_model_scored_in_the_real_game(dream_trained: tuple[Path, str],
                                             tmp_path: Path, run_script) -> None:
    out = tmp_path / "real.json"
    r = run_script("agents/evaluate_policy.py", "--env", "NeuralBreakout-v0", "--policy",
                   str(dream_trained[0]), "--episodes", "2", "--max-steps-per-episode", "50",
                   "--json", str(out), check=True)
    result = json.loads(out.read_text())
    assert result["real_game"] and result["episodes"] == 2 and len(result["per_episode"]) == 2
    lo, hi = result["ci95"]
    assert lo <= result["mean_return"] <= hi
    assert all(e["length"] <= 50 for e in result["per_episode"])
    assert "mean return" in r.stdout


def test_dream_bad_inputs(tiny_world_model: Path, world_model_builder,
                          breakout_dataset: Dataset, tmp_path: Path, run_script) -> None:
    def train(dream: Path) -> subprocess.CompletedProcess:
        return run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--dream", dream,
                          "--steps", "64", "--n-envs", "2", "--n-steps", "32", "--device", "cpu",
                          "--out", str(tmp_path / "out" / "m.zip"))

    pong = world_model_builder(tmp_path / "pong", env_id="NeuralPong-v0")
    no_contexts = tmp_path / "no-contexts"
    shutil.copytree(tiny_world_model, no_contexts)
    for dream, message in [(tmp_path / "missing", "does not exist"),
                           (pong, "world model of NeuralPong-v0, not NeuralBreakout-v0"),
                           (no_contexts, "start_contexts.safetensors is missing")]:
        r = train(dream)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "out").exists()
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--max-episode-steps", "5",
                   "--out", str(tmp_path / "out" / "m.zip"))
    assert r.returncode == 1 and "pass --dream" in r.stderr


def test_dream_default_is_the_shipped_model(tmp_path: Path, run_script) -> None:
    out = tmp_path / "default.zip"
    r = run_script("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--dream", "default",
                   "--steps", "16", "--n-envs", "1", "--n-steps", "16", "--batch-size", "16",
                   "--n-epochs", "1", "--device", "cpu", "--denoising-steps", "1",
                   "--max-episode-steps", "8", "--out", str(out), check=True)
    assert "neuralgym/shipped/breakout" in r.stdout and out.exists()
    r = run_script("agents/train_ppo.py", "--env", "NeuralDemonAttack-v0", "--dream", "default",
                   "--steps", "16", "--device", "cpu", "--out", str(tmp_path / "demon.zip"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "neuralgym/shipped/demonattack" in r.stderr
