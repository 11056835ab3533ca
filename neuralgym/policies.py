"""Policies that play the real games to record data: uniform random and sticky random.

A policy is called as `policy(obs, info) -> action` and `policy.reset(seed)` starts an
episode (see `neuralgym.recording.Policy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RandomPolicy:
    """Uniform random actions."""

    def __init__(self, n_actions: int):
        self.n_actions = n_actions
        self.rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        return int(self.rng.integers(self.n_actions))


class StickyRandomPolicy(RandomPolicy):
    """Random actions held for a random run length (geometric, mean `mean_run` steps).

    Holding actions moves paddles and ships across the screen, so it explores far more of a
    game than uniform random actions do.
    """

    def __init__(self, n_actions: int, mean_run: float = 8.0):
        super().__init__(n_actions)
        self.mean_run = mean_run
        self._action, self._left = 0, 0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._left = 0

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        if self._left <= 0:
            self._action = int(self.rng.integers(self.n_actions))
            self._left = int(self.rng.geometric(1.0 / self.mean_run))
        self._left -= 1
        return self._action
