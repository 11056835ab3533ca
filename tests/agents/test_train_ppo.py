"""Subprocess smoke runs of agents/train_ppo.py, and recording with the model it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuralgym.data import Dataset, load_episode

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch's threads crawl on a busy 2-core CPU


def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, script, *args], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ppo") / "models" / "breakout.zip"
    r = run("agents/train_ppo.py", "--env", "NeuralBreakout-v0", "--steps", "256",
            "--n-envs", "2", "--n-steps", "64", "--out", str(out))
    return out, r.stdout


def test_train_writes_model(trained: tuple[Path, str]) -> None:
    out, stdout = trained
    assert out.is_file() and out.stat().st_size > 0
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left
    assert "mean episode return" in stdout


def test_record_with_trained_model(trained: tuple[Path, str], tmp_path: Path) -> None:
    model, _ = trained
    data = tmp_path / "data"
    run("agents/record.py", "--env", "NeuralBreakout-v0", "--agent", "ppo", "--ppo-model",
        str(model), "--steps", "100", "--workers", "2", "--out", str(data))
    ds = Dataset(data)
    assert ds.num_steps() == 100 and all(e.name.startswith("ppo-s0-w") for e in ds.episodes)
    ep = load_episode(ds.episodes[0].path)
    assert ep.info["agent"] == "ppo" and ep.info["ppo_model"] == str(model)
    assert len(set(ep.actions.tolist())) > 1  # sampled, not one greedy action


def test_record_with_model_of_another_game(trained: tuple[Path, str], tmp_path: Path) -> None:
    """A worker's failure stops the run with the worker's message, not a traceback."""
    model, _ = trained
    r = run("agents/record.py", "--env", "NeuralPong-v0", "--agent", "ppo", "--ppo-model",
            str(model), "--steps", "40", "--workers", "2", "--out", str(tmp_path / "d"),
            check=False)
    assert r.returncode == 1
    assert "Discrete(4)" in r.stderr and "Discrete(6)" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (("--env", "NeuralNope-v0", "--out", "m.zip"), "unknown env id"),
        (("--env", "NeuralBreakout-v0", "--out", "model.pt"), "must end in .zip"),
    ],
)
def test_bad_inputs(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    r = run("agents/train_ppo.py", *args[:-1], str(tmp_path / args[-1]), "--steps", "64",
            check=False)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())
