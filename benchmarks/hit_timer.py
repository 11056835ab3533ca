"""How often DemonAttack's metadata tell a hit a step before the screen shows it.

    python benchmarks/hit_timer.py --data runs/demonattack [--json OUT.json]

DemonAttack's hit_timer (RAM 25, `neuralgym.games.atari`) is set to 63 on the frame the player
is hit and counts down a frame at a time, so an env step (4 frames) ends with it at 60-63. A hit
is the step t where it leaves 0. Where it reads 63 at t, the hit fell on the step's last frame:
the frame of step t is still calm and the screen flashes at t + 1, so a model that reads m_t
(a metadata-conditioned denoiser given g_phi's m_{t+1}, a timer counting down) is told a step
ahead; otherwise the frame of step t flashes already, and nothing in m_{t-1} told it. For each
hit the flash is checked on the recorded frames (the frame's MSE against the one before, over
--flash). Output: the hits, the share told a step ahead with a 95% Wilson interval, and the
hits whose flash came where the timer says; with --json, the same as JSON.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neuralgym.data import Dataset, atomic_write_json  # noqa: E402

SET_AT = 63  # the timer's value on the frame of the hit


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def count(data: str | Path, flash: float) -> dict:
    dataset = Dataset(data)
    if "hit_timer" not in (dataset.metadata_names or []):
        raise SystemExit(f"error: {data} has no hit_timer metadata; record NeuralDemonAttack-v0 "
                         "again (agents/record.py) with this version")
    col = dataset.metadata_names.index("hit_timer")
    hits = ahead = flashed = 0
    for ref in dataset.split("all"):
        episode = dataset.load(ref)
        timer = np.asarray(episode.metadata[:, col])  # (N+1,) one per frame
        steps = np.flatnonzero((timer[1:] > 0) & (timer[:-1] == 0)) + 1
        if not len(steps):
            continue
        frames = episode.frames
        for t in steps:
            told = timer[t] == SET_AT
            f = t + 1 if told else t  # the frame that flashes
            if f >= len(timer):
                continue  # the episode ends before the flash
            hits += 1
            ahead += bool(told)
            change = np.mean((frames[f].astype(np.float32) - frames[f - 1]) ** 2)
            calm = np.mean((frames[f - 1].astype(np.float32) - frames[f - 2]) ** 2) \
                if f >= 2 else 0.0  # the reset frame before it is calm
            flashed += bool(change > flash and calm < flash)
    lo, hi = wilson(ahead, hits)
    return {"data": str(data), "episodes": len(dataset.split("all")), "hits": hits,
            "told_a_step_ahead": ahead, "share": ahead / hits if hits else None,
            "share_ci95": [lo, hi], "flash_where_the_timer_says": flashed,
            "flash_threshold": flash}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a NeuralDemonAttack-v0 recording")
    parser.add_argument("--flash", type=float, default=10_000.0,
                        help="frame-change MSE above which a frame is a flash")
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args(argv)
    result = count(args.data, args.flash)
    lo, hi = result["share_ci95"]
    share = result["share"] or 0.0
    print(f"{result['hits']} hits in {result['episodes']} episodes; told a step ahead by "
          f"hit_timer = {SET_AT}: {result['told_a_step_ahead']} ({share:.2f} [{lo:.2f}, "
          f"{hi:.2f}]); flash where the timer says: {result['flash_where_the_timer_says']}")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
