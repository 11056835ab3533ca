"""Subprocess runs of agents/evaluate_policy.py: real-game scores with bootstrap CIs for the
random baseline and a PPO model, the same numbers with any number of workers, clear errors,
and the learning-curve plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRIPT = "agents/evaluate_policy.py"
ID = "NeuralBreakout-v0"


def save_untrained_ppo(env_id: str, path: Path) -> Path:
    """A PPO model with train_ppo.py's observation and the game's actions (no training)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from neuralgym import make_real
    from neuralgym.policies import wrap_ppo_observation

    venv = DummyVecEnv([lambda: wrap_ppo_observation(make_real(env_id))])
    PPO("CnnPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu").save(path)
    venv.close()
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-models")
    return {"breakout": save_untrained_ppo(ID, root / "breakout.zip"),
            "pong": save_untrained_ppo("NeuralPong-v0", root / "pong.zip")}


@pytest.fixture(scope="module")
def random_result(tmp_path_factory: pytest.TempPathFactory, run_script) -> Path:
    out = tmp_path_factory.mktemp("eval-random") / "results" / "random.json"
    run_script(SCRIPT, "--env", ID, "--policy", "random", "--episodes", "2",
               "--max-steps-per-episode", "50", "--json", out, check=True)
    return out


def test_random_baseline(random_result: Path):
    result = json.loads(random_result.read_text())
    assert result["env"] == ID and result["policy"] == "random" and result["real_game"]
    assert result["episodes"] == 2 and len(result["per_episode"]) == 2
    lo, hi = result["ci95"]
    assert lo <= result["mean_return"] <= hi
    # random Breakout episodes last ~200 steps: both are cut at 50 and marked truncated
    assert result["truncated"] == 2 and result["mean_length"] == 50
    assert all(e["truncated"] and not e["terminated"] for e in result["per_episode"])
    assert [p.name for p in random_result.parent.iterdir()] == ["random.json"]  # atomic


def test_ppo_same_numbers_with_any_workers(models: dict[str, Path], tmp_path: Path, run_script):
    results = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.json"
        r = run_script(SCRIPT, "--env", ID, "--policy", str(models["breakout"]), "--episodes", "2",
                       "--max-steps-per-episode", "50", "--seed", "3", "--workers", workers,
                       "--json", str(out), check=True)
        assert "mean return" in r.stdout and "95% CI" in r.stdout
        results.append(json.loads(out.read_text()))
    assert results[0]["per_episode"] == results[1]["per_episode"]
    assert results[0]["mean_return"] == results[1]["mean_return"]
    assert all(e["length"] <= 50 for e in results[0]["per_episode"])


@pytest.mark.parametrize("args,message", [
    (("--env", ID, "--policy", "MISSING"), "does not exist"),
    (("--env", ID, "--policy", "PONG"), "Discrete(6), the game has Discrete(4)"),
    (("--env", "NeuralNope-v0", "--policy", "random"), "unknown env id"),
    (("--env", ID, "--policy", "random", "--episodes", "0"), "--episodes"),
    (("--env", ID), "--policy"),
    (("--env", ID, "--policy", "scripted"), "no scripted player for NeuralBreakout-v0"),
    (("--curves", "a.csv"), "--plot"),
    (("--curves", "MISSING", "--plot", "OUT"), "learning curve"),
])
def test_bad_inputs(models: dict[str, Path], tmp_path: Path, args: tuple[str, ...],
                    message: str, run_script):
    subst = {"MISSING": str(tmp_path / "nope.zip"), "PONG": str(models["pong"]),
             "OUT": str(tmp_path / "out" / "c.png")}
    r = run_script(SCRIPT, *(subst.get(a, a) for a in args), "--json",
                   tmp_path / "out" / "r.json")
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_plot_learning_curves(random_result: Path, tmp_path: Path, run_script):
    a, b = tmp_path / "dream.curve.csv", tmp_path / "real.curve.csv"
    a.write_text("step,mean_return,episodes,wall_s\n64,0.5,2,1.0\n128,1.5,4,2.0\n")
    b.write_text("step,mean_return,episodes,wall_s\n100,1,3,1.0\n200,2,3,2.0\n300,2.5,3,3\n")
    out = tmp_path / "plots" / "curves.png"
    run_script(SCRIPT, "--curves", str(a), str(b), "--labels", "dream", "real", "--reference",
               str(random_result), "--plot", str(out), check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert [p.name for p in out.parent.iterdir()] == ["curves.png"]
    r = run_script(SCRIPT, "--curves", str(a), str(b), "--labels", "one", "--plot", str(out))
    assert r.returncode == 1 and "1 labels for 2 curves" in r.stderr


def test_in_the_dream(models: dict[str, Path], dream_model_dir: Path, tmp_path: Path,
                      run_script):
    """--dream: the same episodes and statistics inside a world model's dream (a PPO model and
    the random policy), the same numbers with any workers; a folder without a model is a clear
    error."""
    results = []
    for workers, policy in (("1", str(models["breakout"])), ("2", str(models["breakout"])),
                            ("1", "random")):
        out = tmp_path / f"d{workers}-{Path(policy).stem}.json"
        r = run_script(SCRIPT, "--env", ID, "--policy", policy, "--dream", str(dream_model_dir),
                       "--episodes", "2", "--max-steps-per-episode", "4", "--workers", workers,
                       "--json", str(out), check=True)
        assert f"(dream of {dream_model_dir})" in r.stdout
        results.append(json.loads(out.read_text()))
    for result in results:
        assert not result["real_game"] and result["dream"] == str(dream_model_dir)
        assert all(e["length"] <= 4 for e in result["per_episode"])
    assert results[0]["per_episode"] == results[1]["per_episode"]
    r = run_script(SCRIPT, "--env", ID, "--policy", "random", "--dream", str(tmp_path / "nope"),
                   "--json", str(tmp_path / "bad.json"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "bad.json").exists()
