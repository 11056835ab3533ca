"""How often DemonAttack's metadata tell a hit a step before the screen shows it.

    python benchmarks/hit_timer.py --data runs/demonattack [--near 6] [--json OUT.json]

DemonAttack's hit_timer (RAM 25, `neuralgym.games.atari`) is set to 63 on the frame the player
is hit and counts down a frame at a time, so an env step (4 frames) ends with it at 60-63. A hit
is the step t where it leaves 0. Where it reads 63 at t, the hit fell on the step's last frame:
the frame of step t is still calm and the screen flashes at t + 1, so a model that reads m_t
(a metadata-conditioned denoiser given g_phi's m_{t+1}, a timer counting down) is told a step
ahead; otherwise the frame of step t flashes already, and nothing in m_{t-1} told it. For each
hit the flash is checked on the recorded frames (the frame's MSE against the one before, over
--flash). Output: the hits, the share told a step ahead with a 95% Wilson interval, and the
hits whose flash came where the timer says; with --json, the same as JSON.

The other hits are set within the step whose frame flashes. What tells those a step ahead is an
enemy shot falling beside the player: DemonAttack's bullet_dx0 and bullet_dx1 (the shot nearest
the player's centre in the two 8-line bands above its feet, column less centre). The script
counts the hits with a shot within --near columns of the centre at the end of the step before
(m_{t-1}, what g_phi reads to predict m_t), and how often such a shot on a calm step (timer 0)
is followed by a hit the next step: a rule of thumb of what the variables tell, not a model.
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
SHOT_BANDS = (0, 1)  # bullet_dx0, bullet_dx1: the shots that can reach the player in a step


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def count(data: str | Path, flash: float, near: float = 6.0) -> dict:
    dataset = Dataset(data)
    if "hit_timer" not in (dataset.metadata_names or []):
        raise SystemExit(f"error: {data} has no hit_timer metadata; record NeuralDemonAttack-v0 "
                         "again (agents/record.py) with this version")
    names = dataset.metadata_names
    col = names.index("hit_timer")
    shots = [names.index(f"bullet_dx{b}") for b in SHOT_BANDS if f"bullet_dx{b}" in names]
    hits = ahead = flashed = 0
    by_shot = either = near_steps = near_then_hit = 0
    for ref in dataset.split("all"):
        episode = dataset.load(ref)
        timer = np.asarray(episode.metadata[:, col])  # (N+1,) one per frame
        steps = np.flatnonzero((timer[1:] > 0) & (timer[:-1] == 0)) + 1
        if shots:  # (N+1,) a shot within `near` columns of the player's centre
            near_at = (np.abs(np.asarray(episode.metadata[:, shots])) <= near).any(1)
            near_calm = np.flatnonzero((timer[:-1] == 0) & near_at[:-1])  # steps, timer 0
            near_steps += len(near_calm)
            near_then_hit += int(np.sum(timer[near_calm + 1] > 0))
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
            shot = bool(shots) and bool(near_at[t - 1])
            by_shot += shot
            either += shot or bool(told)
            change = np.mean((frames[f].astype(np.float32) - frames[f - 1]) ** 2)
            calm = np.mean((frames[f - 1].astype(np.float32) - frames[f - 2]) ** 2) \
                if f >= 2 else 0.0  # the reset frame before it is calm
            flashed += bool(change > flash and calm < flash)
    lo, hi = wilson(ahead, hits)
    result = {"data": str(data), "episodes": len(dataset.split("all")), "hits": hits,
              "told_a_step_ahead": ahead, "share": ahead / hits if hits else None,
              "share_ci95": [lo, hi], "flash_where_the_timer_says": flashed,
              "flash_threshold": flash}
    if shots:
        result["shots"] = {
            "near": near, "hits_with_a_shot_near": by_shot,
            "hits_told_by_the_timer_or_a_shot": either,
            "share": by_shot / hits if hits else None, "share_ci95": list(wilson(by_shot, hits)),
            "calm_steps_with_a_shot_near": near_steps, "followed_by_a_hit": near_then_hit,
            "hit_rate": near_then_hit / near_steps if near_steps else None,
            "hit_rate_ci95": list(wilson(near_then_hit, near_steps))}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a NeuralDemonAttack-v0 recording")
    parser.add_argument("--flash", type=float, default=10_000.0,
                        help="frame-change MSE above which a frame is a flash")
    parser.add_argument("--near", type=float, default=6.0,
                        help="columns from the player's centre within which a shot counts as near")
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args(argv)
    result = count(args.data, args.flash, args.near)
    lo, hi = result["share_ci95"]
    share = result["share"] or 0.0
    print(f"{result['hits']} hits in {result['episodes']} episodes; told a step ahead by "
          f"hit_timer = {SET_AT}: {result['told_a_step_ahead']} ({share:.2f} [{lo:.2f}, "
          f"{hi:.2f}]); flash where the timer says: {result['flash_where_the_timer_says']}")
    if "shots" in result:
        shots = result["shots"]
        lo, hi = shots["share_ci95"]
        rate_lo, rate_hi = shots["hit_rate_ci95"]
        print(f"a shot within {shots['near']:g} columns of the player the step before: "
              f"{shots['hits_with_a_shot_near']} hits ({shots['share'] or 0.0:.2f} [{lo:.2f}, "
              f"{hi:.2f}]; with the timer's: {shots['hits_told_by_the_timer_or_a_shot']}); "
              f"calm steps with one: {shots['calm_steps_with_a_shot_near']}, "
              f"a hit the next step after {shots['followed_by_a_hit']} "
              f"({shots['hit_rate'] or 0.0:.2f} [{rate_lo:.2f}, {rate_hi:.2f}])")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
