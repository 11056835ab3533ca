"""Does the Pong dream return the ball as the game does? From a `dream_rewards.py --trace`
file: every time the ball reaches the player's (right) paddle, whether it comes back or
passes, and where the ball was against the paddle, per run (real, dream, ...).

    python benchmarks/pong_returns.py --trace pong-cpu-session12-scripted.trace.npz

An arrival is a step where ball_x, moving right, is in [ARRIVE_LO, PADDLE_X] with the ball in
play (ball_y > 0); the next WINDOW steps decide it: passed if ball_x goes beyond PASSED_X,
else returned. The offset is ball_y - player_y at the window's step nearest PADDLE_X (the
real game's returns have it at about 0-7; see the printout for the game's own spread). After
an arrival the next WINDOW steps are skipped. In the dream both variables are g_phi's
predictions: a dream that returns the ball regardless of where the paddle is shows returns and
passes with the same offsets.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralgym.cli import parse_args
from neuralgym.policies import PongScriptedPolicy

PADDLE_X = PongScriptedPolicy.HIT_X  # ball_x at the player's paddle
ARRIVE_LO, PASSED_X, WINDOW = PADDLE_X - 8, PADDLE_X + 9, 8


@dataclass
class Args:
    trace: str = field(metadata={"help": "a trace of NeuralPong-v0 (dream_rewards.py --trace)"})


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
            if ARRIVE_LO <= x <= PADDLE_X and x > ball_x[t - 1, e] and ball_y[t, e] > 0:
                w = ball_x[t:t + WINDOW, e]
                k = t + int(np.argmin(np.abs(w - PADDLE_X)))
                out["passed" if w.max() > PASSED_X else "returned"].append(
                    float(ball_y[k, e] - player_y[k, e]))
                t += WINDOW
            else:
                t += 1
    return {k: np.asarray(v) for k, v in out.items()}


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    try:
        trace = np.load(args.trace)
    except (OSError, ValueError) as e:
        sys.exit(f"error: cannot read {args.trace} ({e}); write one with "
                 "benchmarks/dream_rewards.py --env NeuralPong-v0 --trace FILE.npz")
    with trace:
        runs = sorted({k.split("/")[0] for k in trace.files})
        for run in runs:
            try:
                cols = [trace[f"{run}/{k}"] for k in ("ball_x", "ball_y", "player_y")]
            except KeyError:
                sys.exit(f"error: {args.trace} has no Pong variables for run {run!r} (ball_x, "
                         "ball_y, player_y): is it a NeuralPong-v0 trace?")
            s = summary(arrivals(*cols))
            rate = "-" if s["return_rate"] is None else f"{s['return_rate']:.2f}"
            print(f"{run}: {s['arrivals']} arrivals at the paddle, {s['returned']} returned "
                  f"(rate {rate})")
            for k in ("returned", "passed"):
                if f"{k}_offset" in s:
                    o = s[f"{k}_offset"]
                    print(f"  {k}: ball_y - player_y median {o['median']:.0f}, quartiles "
                          f"{o['quartiles'][0]:.0f} / {o['quartiles'][1]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
