"""neuralgym: learned world models of video games, served as Gymnasium environments."""

from neuralgym.games import GAMES, GameSpec, get_spec
from neuralgym.real_env import RealGameEnv, RomNotFoundError, make_real

__all__ = ["GAMES", "GameSpec", "RealGameEnv", "RomNotFoundError", "get_spec", "make_real"]
