"""benchmarks/pong_returns.py: balls that reach Pong's right paddle, returned or passed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SCRIPT = "benchmarks/pong_returns.py"
MIRROR = 186.0 + 70.0  # the player's paddle's ball_x and the computer's


@pytest.fixture(scope="module")
def pong_returns(load_script):
    return load_script(SCRIPT, "pong_returns_script")


def rally(n_steps: int, plan: list[tuple[bool, float]]) -> tuple[np.ndarray, ...]:
    """One env's ball_x, ball_y, player_y (L, 1): the ball runs right from x 150 at 4 a step;
    each arrival is returned (it turns at 186) or passed (it goes on to 210), with the ball
    `offset` below the paddle there; then it is back at 150."""
    bx, by, py = [], [], []
    for returned, offset in plan:
        xs = [150 + 4 * i for i in range(10)]  # 150 .. 186
        xs += [182, 178, 174, 170] if returned else [190, 194, 198, 202, 206, 210]
        bx += xs
        by += [100.0] * len(xs)
        py += [100.0 - offset] * len(xs)
    pad = n_steps - len(bx)
    return tuple(np.asarray(v + [v[-1]] * pad, np.float32)[:, None] for v in (bx, by, py))


def test_arrivals_sorts_returns_from_passes(pong_returns):
    plan = [(True, 2.0), (False, 30.0), (True, 4.0), (False, 40.0), (True, 6.0)]
    offsets = pong_returns.arrivals(*rally(80, plan))
    np.testing.assert_array_equal(offsets["returned"], [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(offsets["passed"], [30.0, 40.0])
    s = pong_returns.summary(offsets)
    assert s["arrivals"] == 5 and s["returned"] == 3 and s["return_rate"] == pytest.approx(0.6)
    assert s["returned_offset"]["median"] == 4.0 and s["passed_offset"]["median"] == 35.0
    # a ball out of play (ball_y 0 in the game, near 0 in a dream) is no arrival
    bx, by, py = rally(80, plan)
    for y in (0.0, 2.0):
        assert pong_returns.summary(pong_returns.arrivals(bx, by * 0 + y, py))["arrivals"] == 0


def test_motion_measures_speed_off_screen_steps_and_runs_of_points(pong_returns):
    bx = np.asarray([[10.0], [14.0], [18.0], [42.0], [300.0], [-5.0]])  # 4, 4, 24, jump, jump
    score = np.asarray([[0.0], [1.0], [2.0], [2.0], [2.0], [3.0]])  # points at 1, 2 and 5
    # out of play: the game's 0, a dream's -1 or 2 (near 0); in play: 44 and more
    by = np.asarray([[0.0], [50.0], [50.0], [-1.0], [2.0], [70.0]])
    m = pong_returns.motion(bx, {"player_score": score}, by)
    assert m["ball_x_step_median"] == 4.0 and m["ball_x_off_byte"] == pytest.approx(2 / 6)
    assert m["out_of_play"] == pytest.approx(3 / 6)
    assert m["player_score"]["points"] == 3
    assert m["player_score"]["in_runs"] == 2  # gaps 1 and 3, both <= 10
    assert m["player_score"]["per_1000"] == pytest.approx(1000 * 3 / 5)  # 3 in 5 steps
    # ball_x the step before each point: 10, 14, 300
    assert m["player_score"]["ball_x"] == pytest.approx(
        [np.percentile([10, 14, 300], q) for q in (10, 50, 90)])
    assert pong_returns.motion(bx, {"s": score * 0})["s"]["ball_x"] is None
    assert "out_of_play" not in pong_returns.motion(bx, {})


def test_script_reads_a_trace(tmp_path: Path, run_script):
    real = rally(60, [(True, 3.0), (True, 3.0), (False, 20.0)])
    dream = rally(60, [(False, 3.0), (True, 25.0), (False, 3.0)])
    # then a rally at the computer's paddle: the same plan, mirrored, enemy_y for player_y
    arrays = {}
    for run, (bx, by, py) in (("real", real), ("dream", dream)):
        arrays.update({f"{run}/ball_x": np.concatenate([bx, MIRROR - bx]),
                       f"{run}/ball_y": np.concatenate([by, by]),
                       f"{run}/player_y": np.concatenate([py, py]),
                       f"{run}/enemy_y": np.concatenate([py, py])})
    np.savez(tmp_path / "t.npz", **arrays)
    r = run_script(SCRIPT, "--trace", tmp_path / "t.npz", check=True)
    runs = {run: r.stdout.split(f"{run}:\n")[1].split("\nreal:")[0] for run in ("dream", "real")}
    for side in ("player", "enemy"):
        assert f"3 arrivals at the {side}'s paddle, 2 returned (rate 0.67)" in runs["real"]
        assert f"3 arrivals at the {side}'s paddle, 1 returned (rate 0.33)" in runs["dream"]
    r = run_script(SCRIPT, "--trace", tmp_path / "t.npz", "--steps", "20", check=True)
    assert "1 arrivals at the player's paddle" in r.stdout  # the first 20 steps: one rally
    assert "0 arrivals at the enemy's paddle" in r.stdout
    r = run_script(SCRIPT, "--trace", tmp_path / "t.npz", "--steps", "1")
    assert r.returncode != 0 and "--steps must be" in r.stderr
    np.savez(tmp_path / "bad.npz", **{"real/actions": np.zeros((3, 1))})
    r = run_script(SCRIPT, "--trace", tmp_path / "bad.npz")
    assert r.returncode != 0 and "is it a NeuralPong-v0 trace?" in r.stderr
    r = run_script(SCRIPT, "--trace", tmp_path / "missing.npz")
    assert r.returncode != 0 and "cannot read" in r.stderr and "Traceback" not in r.stderr

