"""Does the Pong dream return the ball as the game does? From a `dream_rewards.py --trace`
file: every time the ball reaches the player's (right) paddle, and the computer's (left)
one, whether it comes back or passes, and where the ball was against the paddle, per run
(real, dream, ...).

    python benchmarks/pong_returns.py --trace pong-cpu-session12-scripted.trace.npz

An arrival is a step where ball_x, moving right, is in [ARRIVE_LO, PADDLE_X] with the ball in
play (ball_y >= IN_PLAY_Y); the next WINDOW steps decide it: passed if ball_x goes beyond
PASSED_X, else returned. The offset is ball_y - player_y at the window's step nearest PADDLE_X (the
real game's returns have it at about 0-7; see the printout for the game's own spread). After
an arrival the next WINDOW steps are skipped. The computer's side is the same with ball_x
mirrored about the middle of the two paddles (`ENEMY_X`) and enemy_y for player_y. In the
dream all these variables are g_phi's predictions: a dream that returns the ball regardless of
where the paddle is shows returns and passes with the same offsets.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralgym.cli import parse_args
from neuralgym.policies import PongScriptedPolicy

PADDLE_X = PongScriptedPolicy.HIT_X  # ball_x at the player's paddle
# ball_x at the computer's paddle, where the game turns the ball (its RAM, measured: 69-70);
# that side's arrivals are the player's with ball_x mirrored (MIRROR - ball_x)
ENEMY_X = 70.0
MIRROR = PADDLE_X + ENEMY_X
MAX_STEP, RAM_MAX, RUN = 24, 255, 10  # a step class's largest move; a RAM byte; a run's gap
ARRIVE_LO, PASSED_X, WINDOW = PADDLE_X - 8, PADDLE_X + 9, 8
# the ball is out of play above the top wall (ball_y below it): the game's pause after a point
# has it at 0 (in play it is 44 or more); a dream's g_phi lands it near 0, not always on it
IN_PLAY_Y = PongScriptedPolicy.TOP


@dataclass
class Args:
    trace: str = field(metadata={"help": "a trace of NeuralPong-v0 (dream_rewards.py --trace)"})
    steps: int = field(default=0, metadata={
        "help": "read only the first N steps of each env (a PPO dream episode's length: 128); "
                "0: all"})


def arrivals(ball_x: np.ndarray, ball_y: np.ndarray, player_y: np.ndarray
             ) -> dict[str, np.ndarray]:
    """The ball's arrivals at the paddle in (L, N) arrays: offsets (ball_y - player_y) of those
    returned and of those passed."""
    steps, n = ball_x.shape
    out: dict[str, list[float]] = {"returned": [], "passed": []}
    for e in range(n):
        t = 1
        while t < steps - WINDOW:
            x = ball_x[t, e]
            if ARRIVE_LO <= x <= PADDLE_X and x > ball_x[t - 1, e] and ball_y[t, e] >= IN_PLAY_Y:
                w = ball_x[t:t + WINDOW, e]
                k = t + int(np.argmin(np.abs(w - PADDLE_X)))
                out["passed" if w.max() > PASSED_X else "returned"].append(
                    float(ball_y[k, e] - player_y[k, e]))
                t += WINDOW
            else:
                t += 1
    return {k: np.asarray(v) for k, v in out.items()}


def motion(ball_x: np.ndarray, scores: dict[str, np.ndarray],
           ball_y: np.ndarray | None = None) -> dict[str, Any]:
    """How the ball moves and the points come, from (L, N) arrays: the median |ball_x step|
    over the steps it moves by 1..MAX_STEP (the game's: 4), the share of steps with ball_x
    outside a RAM byte's 0..RAM_MAX, with `ball_y` the share with the ball out of play
    (ball_y below IN_PLAY_Y: the pause after a point), and per score its points, those that
    come within RUN steps of that side's last point (the game's never do: a serve comes first)
    and ball_x the step before them (10th, 50th, 90th percentiles: where the ball passed)."""
    step = np.abs(np.diff(ball_x, axis=0))
    moving = step[(step > 0) & (step <= MAX_STEP)]
    out: dict[str, Any] = {
        "ball_x_step_median": float(np.median(moving)) if moving.size else None,
        "ball_x_off_byte": float(((ball_x < 0) | (ball_x > RAM_MAX)).mean())}
    if ball_y is not None:
        out["out_of_play"] = float((ball_y < IN_PLAY_Y).mean())
    for name, score in scores.items():
        points = np.diff(score, axis=0) > 0  # (L-1, N)
        gaps = np.concatenate([np.diff(np.nonzero(points[:, e])[0])
                               for e in range(points.shape[1])])
        at = ball_x[:-1][points]  # ball_x the step before each point
        out[name] = {"points": int(points.sum()), "in_runs": int((gaps <= RUN).sum()),
                     "per_1000": 1000.0 * float(points.mean()) if points.size else 0.0,
                     "ball_x": [float(np.percentile(at, q)) for q in (10, 50, 90)]
                     if at.size else None}
    return out


def summary(offsets: dict[str, np.ndarray]) -> dict[str, Any]:
    total = sum(len(v) for v in offsets.values())
    out: dict[str, Any] = {"arrivals": total, "returned": len(offsets["returned"]),
                           "return_rate": len(offsets["returned"]) / total if total else None}
    for k, v in offsets.items():
        if len(v):
            out[f"{k}_offset"] = {"median": float(np.median(v)),
                                  "quartiles": [float(np.percentile(v, 25)),
                                                float(np.percentile(v, 75))]}
    return out


def print_side(side: str, s: dict[str, Any]) -> None:
    rate = "-" if s["return_rate"] is None else f"{s['return_rate']:.2f}"
    print(f"  {s['arrivals']} arrivals at the {side}'s paddle, {s['returned']} returned "
          f"(rate {rate})")
    for k in ("returned", "passed"):
        if f"{k}_offset" in s:
            o = s[f"{k}_offset"]
            print(f"    {k}: ball_y - {side}_y median {o['median']:.0f}, quartiles "
                  f"{o['quartiles'][0]:.0f} / {o['quartiles'][1]:.0f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    if args.steps < 0 or args.steps == 1:
        sys.exit("error: --steps must be 0 (all) or at least 2")
    cut = args.steps or None
    try:
        trace = np.load(args.trace)
    except (OSError, ValueError) as e:
        sys.exit(f"error: cannot read {args.trace} ({e}); write one with "
                 "benchmarks/dream_rewards.py --env NeuralPong-v0 --trace FILE.npz")
    with trace:
        runs = sorted({k.split("/")[0] for k in trace.files})
        for run in runs:
            try:
                cols = [trace[f"{run}/{k}"][:cut]
                        for k in ("ball_x", "ball_y", "player_y", "enemy_y")]
            except KeyError:
                sys.exit(f"error: {args.trace} has no Pong variables for run {run!r} (ball_x, "
                         "ball_y, player_y, enemy_y): is it a NeuralPong-v0 trace?")
            print(f"{run}:")
            for side, ball_x, paddle_y in (("player", cols[0], cols[2]),
                                           ("enemy", MIRROR - cols[0], cols[3])):
                print_side(side, summary(arrivals(ball_x, cols[1], paddle_y)))
            scores = {k: trace[f"{run}/{k}"][:cut] for k in ("player_score", "enemy_score")
                      if f"{run}/{k}" in trace.files}
            m = motion(cols[0], scores, cols[1])
            speed = "-" if m["ball_x_step_median"] is None else f"{m['ball_x_step_median']:.0f}"
            print(f"  ball_x moves {speed} a step (median of its moves of 1-{MAX_STEP}), off "
                  f"0..{RAM_MAX} in {m['ball_x_off_byte']:.3f} of steps; out of play (ball_y "
                  f"< {IN_PLAY_Y:.0f}) in {m['out_of_play']:.3f}")
            for k in scores:
                at = m[k]["ball_x"]
                where = "" if at is None else (", ball_x the step before at {:.0f} / {:.0f} / "
                                                "{:.0f} (10th / 50th / 90th percentile)"
                                                .format(*at))
                print(f"  {k}: {m[k]['points']} points ({m[k]['per_1000']:.2f} per 1,000 "
                      f"steps), {m[k]['in_runs']} within {RUN} steps of the last{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
