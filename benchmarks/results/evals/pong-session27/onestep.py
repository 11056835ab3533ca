"""Session 27: g_phi's one-step predictions (the recorded 32 steps before as its input) of the
paddles and the ball at the moments the dream's rallies turn on, against a recording.

    PYTHONPATH=. python benchmarks/results/evals/pong-session27/onestep.py \
        checkpoints/pong CACHE [WINDOWS_PER_EPISODE (300) [TEST_ONLY (0)]]

For each of up to 300 windows per recorded episode (seed 0; with TEST_ONLY 1 of the cache's
test episodes only, for a g_phi trained on its train episodes): the computer's paddle move
(enemy_y) per ball direction and ball_y speed, and per ball_y - enemy_y while the ball comes
towards it; at the player's paddle whether the ball turns (returned) and its ball_y speed after
the turn; at the computer's paddle the same. Printed.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

import numpy as np
import torch

from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder
from neuralgym.models.metadata import MetadataConfig, MetadataPredictor
from neuralgym.policies import PongScriptedPolicy

W = 32
# ball_y below this: the pause after a point (session 27's outputs were made with 34)
IN_PLAY = PongScriptedPolicy.TOP


def determined(prev: np.ndarray, prev2: np.ndarray, action: np.ndarray, sel: np.ndarray,
               dy: np.ndarray, paddle: int, ball_x: int, ball_y: int) -> str:
    """Of the turns in `sel` whose last two steps (ball_y - paddle, the ball's and the paddle's
    steps, ball_x, the action) recur, the share whose ball_y step is their group's commonest
    (1.0 where the game's outcome is a function of what g_phi reads), and how many."""
    groups: dict[tuple[int, ...], Counter[int]] = defaultdict(Counter)
    for i in np.flatnonzero(sel):
        key = (prev[i, ball_y] - prev[i, paddle], prev[i, ball_y] - prev2[i, ball_y],
               prev[i, paddle] - prev2[i, paddle], prev[i, ball_x], action[i])
        groups[tuple(int(v) for v in key)][int(dy[i])] += 1
    recurring = [g for g in groups.values() if sum(g.values()) > 1]
    total = sum(sum(g.values()) for g in recurring)
    common = sum(g.most_common(1)[0][1] for g in recurring)
    return f"{common / max(total, 1):.3f} (of {total} turns whose two steps recur)"


def main(model_dir: str, cache: str, per_episode: int = 300, test_only: int = 0) -> None:
    data = LatentCache(cache)
    names = data.info["metadata_names"]
    PLAYER_Y, ENEMY_Y, BALL_X, BALL_Y = (names.index(n) for n in  # noqa: N806 (columns)
                                         ("player_y", "enemy_y", "ball_x", "ball_y"))
    folder = ModelFolder(model_dir)
    model = MetadataPredictor(folder.component_config("metadata", MetadataConfig))
    folder.load_component("metadata", model)
    model.eval()
    m, a = data.metadata, data.actions
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.arange(s + W + 1, s + n), min(per_episode, n - W - 1),
                                      replace=False)
                           for s, n, test in data.episodes
                           if n > W + 1 and (test or not test_only)])
    pred = []
    with torch.no_grad():
        for i in range(0, len(rows), 1024):
            r = rows[i:i + 1024]
            meta = torch.tensor(np.stack([m[t - W - 1:t] for t in r]))  # (B, W+1, M)
            act = torch.tensor(np.stack([a[t - W:t] for t in r]))  # (B, W)
            pred.append(model.predict(meta, torch.zeros(len(r), W, 0, 0, 0), act).numpy())
    p = np.concatenate(pred)  # (N, M) predicted m_t
    real, prev, prev2 = (np.asarray(m[rows - k]) for k in (0, 1, 2))
    print(f"{len(rows)} windows of {cache}")
    in_play = (np.minimum(np.minimum(prev[:, BALL_Y], prev2[:, BALL_Y]), real[:, BALL_Y])
               >= IN_PLAY)
    vx, vy = prev[:, BALL_X] - prev2[:, BALL_X], prev[:, BALL_Y] - prev2[:, BALL_Y]
    d_real, d_pred = real - prev, p - prev  # (N, M) each variable's step
    e_real, e_pred = d_real[:, ENEMY_Y], np.round(d_pred[:, ENEMY_Y])
    print("computer's paddle step (enemy_y), by the ball's direction and |ball_y step|:")
    for name, going in (("left", vx < 0), ("right", vx > 0)):
        for speed in (0, 4, 8):
            k = in_play & going & (np.abs(vy) == speed)
            if k.sum() >= 20:
                print(f"  ball {name:5s} |dy| {speed}: n {k.sum():6d}, mean |step| recorded "
                      f"{np.abs(e_real[k]).mean():.2f} predicted {np.abs(e_pred[k]).mean():.2f},"
                      f" exact {np.mean(e_real[k] == e_pred[k]):.3f}")
    print("  the ball coming left, by ball_y - enemy_y:")
    offset = prev[:, BALL_Y] - prev[:, ENEMY_Y]
    for lo in range(-40, 41, 8):
        k = in_play & (vx < 0) & (offset >= lo) & (offset < lo + 8)
        if k.sum() >= 20:
            print(f"    [{lo:4d}, {lo + 8:4d}): n {k.sum():6d}, mean step recorded "
                  f"{e_real[k].mean():6.2f} predicted {e_pred[k].mean():6.2f}, exact "
                  f"{np.mean(e_real[k] == e_pred[k]):.3f}")
    a_prev = np.asarray(a[rows - 1])  # a_{t-1} of each window's m_t
    for side, near, turn, paddle in (
            ("player's", (vx > 0) & (prev[:, BALL_X] >= 170), -1, PLAYER_Y),
            ("computer's", (vx < 0) & (prev[:, BALL_X] <= 80), 1, ENEMY_Y)):
        k = in_play & near
        t_real = turn * d_real[:, BALL_X] > 0
        t_pred = turn * d_pred[:, BALL_X] > 0
        both = k & t_real & t_pred
        dy_r, dy_p = d_real[:, BALL_Y], np.round(d_pred[:, BALL_Y])
        print(f"at the {side} paddle: n {k.sum()}, turns recorded {(k & t_real).sum()}, "
              f"predicted {(k & t_pred).sum()}, both {both.sum()}; ball_y step after the turn "
              f"exact in {np.mean(dy_r[both] == dy_p[both]):.3f}; the game's own is "
              f"{determined(prev, prev2, a_prev, k & t_real, dy_r, paddle, BALL_X, BALL_Y)} "
              "determined by the last two steps")
        for v in np.unique(dy_r[both]):
            sel = both & (dy_r == v)
            if sel.sum() >= 10:
                got, count = np.unique(dy_p[sel].astype(int), return_counts=True)
                print(f"    recorded {int(v):3d}: n {sel.sum():4d}, predicted "
                      f"{dict(zip(got.tolist(), count.tolist(), strict=True))}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(x) for x in sys.argv[3:]))
