"""Game specs by Neural env id. `get_spec("NeuralBreakout-v0")` -> `GameSpec`."""

from __future__ import annotations

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


__all__ = [
    "AIRSTRIKER", "BREAKOUT", "DEMON_ATTACK", "GAMES", "PONG", "SONIC", "GameSpec", "MetaVar",
    "UnknownEnvError", "get_spec",
]
