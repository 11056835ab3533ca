"""Game specs by Neural env id. `get_spec("NeuralBreakout-v0")` -> `GameSpec`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuralgym.games.atari import ATARI_GAMES, BREAKOUT, DEMON_ATTACK, PONG
from neuralgym.games.genesis import AIRSTRIKER, GENESIS_GAMES, SONIC
from neuralgym.games.spec import GameSpec, MetaVar

GAMES: dict[str, GameSpec] = {spec.env_id: spec for spec in (*ATARI_GAMES, *GENESIS_GAMES)}


class UnknownEnvError(KeyError):
    """An env id that neuralgym does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def get_spec(env_id: str) -> GameSpec:
    """The spec of a Neural env id, or an UnknownEnvError listing the known ids."""
    try:
        return GAMES[env_id]
    except KeyError:
        raise UnknownEnvError(
            f"unknown env id {env_id!r}; neuralgym knows: {', '.join(GAMES)}"
        ) from None


def _spec_of(env_id: str | None, names: Sequence[str]) -> GameSpec | None:
    """The spec of `env_id` if its metadata are named `names` (a model's), else None."""
    spec = GAMES.get(env_id or "")
    return spec if spec is not None and tuple(names) == spec.metadata_names else None


def step_limits(env_id: str | None, names: Sequence[str]) -> np.ndarray | None:
    """`GameSpec.step_limits` (2, M) of `env_id` for metadata named `names`; None for an
    unknown game, a game without limits, or metadata that are not the game's."""
    spec = _spec_of(env_id, names)
    return None if spec is None else spec.step_limits()


def class_counts(env_id: str | None, names: Sequence[str]) -> tuple[int, ...] | None:
    """`GameSpec.class_counts` of `env_id` for metadata named `names` (the game's categorical
    values, 0 where it does not say); None for an unknown game or metadata not the game's."""
    spec = _spec_of(env_id, names)
    return None if spec is None else spec.class_counts()


__all__ = [
    "AIRSTRIKER", "BREAKOUT", "DEMON_ATTACK", "GAMES", "PONG", "SONIC", "GameSpec", "MetaVar",
    "UnknownEnvError", "class_counts", "get_spec", "step_limits",
]
