"""benchmarks/dream_rewards.py: points won and lost per 1,000 steps, real game vs dream."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

SCRIPT = "benchmarks/dream_rewards.py"


@pytest.fixture(scope="module")
def dream_rewards(load_script):
    return load_script(SCRIPT, "dream_rewards_script")


class Scripted(gym.Env):
    """Reward +1 at steps 1, 4, 7, ... and -2 at 2, 5, 8, ... of an episode; ends at step 5."""

    observation_space = gym.spaces.Box(0, 255, (2, 2, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((2, 2, 3), np.uint8), {}

    def step(self, action):
        self.t += 1
        reward = {1: 1.0, 2: -2.0}.get(self.t % 3, 0.0)
        return np.zeros((2, 2, 3), np.uint8), reward, self.t == 5, False, {}


def test_play_counts_points_episodes_and_skips_reset_steps(dream_rewards):
    venv = gym.vector.SyncVectorEnv([Scripted, Scripted])
    policies = dream_rewards.make_policies("random", "NeuralBreakout-v0", 2, 2, seed=0)
    counts = dream_rewards.play(venv, policies, steps=12, seed=0)
    # 12 steps = episode (5 steps), reset step, episode (5), reset step: 10 game steps;
    # each episode: +1 at t = 1, 4; -2 at t = 2, 5
    np.testing.assert_array_equal(counts["steps"], [10, 10])
    np.testing.assert_array_equal(counts["ended"], [2, 2])
    np.testing.assert_array_equal(counts["won"], [4, 4])
    np.testing.assert_array_equal(counts["lost"], [8, 8])
    # with a trace: every step's actions, rewards and info values, row t after step t
    class Counting(Scripted):
        def step(self, action):
            obs, reward, term, trunc, _ = super().step(action)
            return obs, reward, term, trunc, {"x": float(10 * self.t + action)}

    venv = gym.vector.SyncVectorEnv([Counting, Counting])
    trace = {k: np.full((12, 2), -1.0, np.float32) for k in ("actions", "rewards", "x")}
    again = dream_rewards.play(venv, dream_rewards.make_policies(
        "random", "NeuralBreakout-v0", 2, 2, seed=0), steps=12, seed=0, trace=trace)
    np.testing.assert_array_equal(again["won"], counts["won"])
    episode = [1.0, -2.0, 0.0, 1.0, -2.0, 0.0]  # 5 steps, then the reset step (reward 0)
    np.testing.assert_array_equal(trace["rewards"][:, 0], episode * 2)
    assert set(np.unique(trace["actions"])) <= {0.0, 1.0}
    t = np.array([1, 2, 3, 4, 5, 0] * 2, np.float32)[:, None]  # the reset step's info: t = 0
    np.testing.assert_array_equal(trace["x"][:5], 10 * t[:5] + trace["actions"][:5])
    assert np.isnan(trace["x"][5]).all()  # the reset step's info has no "x"
    # sub-envs out of step: where one resets, its info lacks "x" (gymnasium's `_x` mask
    # False, the value filled with 0) while the other's has it; the trace has NaN there
    class Short(Counting):
        def step(self, action):
            obs, reward, term, trunc, info = super().step(action)
            return obs, reward, self.t == 3, trunc, info

    venv = gym.vector.SyncVectorEnv([Counting, Short])
    trace = {"x": np.zeros((6, 2))}
    dream_rewards.play(venv, dream_rewards.make_policies(
        "random", "NeuralBreakout-v0", 2, 2, seed=0), steps=6, seed=0, trace=trace)
    assert np.isnan(trace["x"][3, 1]) and np.isfinite(trace["x"][3, 0])
    assert np.isfinite(trace["x"][4]).all() and np.isnan(trace["x"][5, 0])
    r = dream_rewards.rates(counts)
    assert r["won"]["mean"] == 400 and r["lost"]["mean"] == 800 and r["net"]["mean"] == -400
    assert r["ended"]["mean"] == 200 and r["steps"] == 20


def test_script_runs_real_and_dream_with_and_without_limits(dream_model_dir: Path, tmp_path,
                                                            run_script):
    out = tmp_path / "r.json"
    r = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--model", dream_model_dir, "--envs",
                   "2", "--steps", "6", "--without-limits", "--json", out, "--trace",
                   tmp_path / "t.npz", check=True)
    assert "| dream-without-limits |" in r.stdout
    with np.load(tmp_path / "t.npz") as trace:
        runs = ("real", "dream", "dream-without-limits")
        assert {k.split("/")[0] for k in trace.files} == set(runs)
        for run in runs:
            for key in ("actions", "rewards", "ball_x", "lives"):
                assert trace[f"{run}/{key}"].shape == (6, 2)
        assert np.isin(trace["real/actions"], np.arange(4)).all()
        assert (trace["real/lives"] > 0).all()  # the game's lives, read from info
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"real", "dream", "dream-without-limits"}
    for res in report["results"].values():
        assert 10 <= res["steps"] <= 12  # 2 envs x 6 steps, less any reset steps
        assert res["won"]["n"] == 2 and res["lost"]["mean"] >= 0


def test_unknown_env_is_a_clear_error(run_script):
    r = run_script(SCRIPT, "--env", "NeuralNope-v0")
    assert r.returncode != 0 and "unknown env id" in r.stderr
    r = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--policy", "scripted")
    assert r.returncode != 0 and "no scripted player for NeuralBreakout-v0" in r.stderr
    r = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--policy", "nope.zip")
    assert r.returncode != 0 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_scripted_policy_reads_each_envs_info(dream_rewards):
    """play() hands every policy its own env's info (a scripted player reads the metadata)."""
    seen = []

    class Recorder:
        def reset(self, seed=None):
            pass

        def __call__(self, obs, info):
            seen.append(info.get("k"))
            return 0

    class WithInfo(Scripted):
        def __init__(self, k):
            self.k = k

        def reset(self, *, seed=None, options=None):
            obs, _ = super().reset(seed=seed)
            return obs, {"k": self.k}

        def step(self, action):
            obs, r, term, trunc, _ = super().step(action)
            return obs, r, term, trunc, {"k": self.k}

    venv = gym.vector.SyncVectorEnv([lambda: WithInfo(10), lambda: WithInfo(20)])
    dream_rewards.play(venv, [Recorder(), Recorder()], steps=3, seed=0)
    assert seen == [10, 20] * 3
