"""benchmarks/policy_gap.py on a tiny untrained world model, an untrained PPO policy and real
Breakout play: the gap measures, the JSON, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuralgym import make_real
from neuralgym.policies import wrap_ppo_observation


@pytest.fixture(scope="module")
def gap(load_script):
    return load_script("benchmarks/policy_gap.py", "policy_gap")


@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: wrap_ppo_observation(make_real("NeuralBreakout-v0"))])
    path = tmp_path_factory.mktemp("ppo") / "agent.zip"
    PPO("CnnPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu").save(path)
    venv.close()
    return path


def test_compare(gap) -> None:
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    assert gap.compare(p, p) == {"tv": 0.0, "same_argmax": 1.0, "same_sample": 0.5}
    assert gap.compare(p, q) == {"tv": 0.5, "same_argmax": 0.0, "same_sample": 0.25}


def test_runs_and_writes_the_json(gap, tiny_world_model: Path, breakout_dataset, ppo_zip: Path,
                                  tmp_path: Path) -> None:
    out = tmp_path / "gap.json"
    result = gap.main(["--model", str(tiny_world_model), "--data", str(breakout_dataset.root),
                       "--policy", str(ppo_zip), "--windows", "3", "--horizons", "1", "5",
                       "--denoising-steps", "1", "--batch-size", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["windows"] == 3
    assert set(result["variants"]) == {"previous", "recon", "dream-1", "dream-5"}
    for v in result["variants"].values():
        assert 0 <= v["tv"]["mean"] <= 1 and 0 <= v["same_argmax"]["mean"] <= 1
        lo, hi = v["tv"]["ci95"]
        assert lo <= v["tv"]["mean"] <= hi
    # an untrained model's frames are noise: the policy's output moves off the real frames'
    assert result["variants"]["dream-5"]["tv"]["mean"] > 0
    # dreams rolled out together (batch 2: a full batch and a partial one) or one by one: the
    # same steps, the same real and reconstructed stacks; the dreams draw other noise
    one = gap.main(["--model", str(tiny_world_model), "--data", str(breakout_dataset.root),
                    "--policy", str(ppo_zip), "--windows", "3", "--horizons", "1", "5",
                    "--denoising-steps", "1", "--batch-size", "1"])
    assert one["same_sample_real"] == result["same_sample_real"]
    assert one["variants"]["previous"] == result["variants"]["previous"]
    assert one["variants"]["recon"]["tv"]["mean"] == pytest.approx(
        result["variants"]["recon"]["tv"]["mean"], abs=1e-4)
    assert one["variants"]["dream-5"]["tv"]["mean"] > 0


def test_errors(gap, tiny_world_model: Path, breakout_dataset, ppo_zip: Path,
                tmp_path: Path) -> None:
    base = ["--model", str(tiny_world_model), "--data", str(breakout_dataset.root),
            "--policy", str(ppo_zip)]
    with pytest.raises(SystemExit, match="record longer episodes"):
        gap.main([*base, "--horizons", "500"])
    with pytest.raises(SystemExit):
        gap.main([*base[:-1], str(tmp_path / "missing.zip")])
    with pytest.raises(SystemExit):
        gap.main([*base, "--horizons", "0"])
    with pytest.raises(SystemExit):
        gap.main([*base, "--batch-size", "0"])
