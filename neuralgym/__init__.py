"""neuralgym: learned world models of video games, served as Gymnasium environments.

Importing neuralgym registers the dream envs (NeuralSonic-v0, NeuralAirstriker-v0,
NeuralBreakout-v0, NeuralPong-v0, NeuralDemonAttack-v0) with string entry points; torch and the
models load only when an env is made:

    env = gym.make("NeuralBreakout-v0", model="path/to/world-model")  # or model=None: shipped
    envs = gym.make_vec("NeuralBreakout-v0", num_envs=8, model=...)   # one batched model call
"""

from gymnasium.envs.registration import register, registry

from neuralgym.games import GAMES, GameSpec, get_spec
from neuralgym.real_env import RealGameEnv, RomNotFoundError, make_real

for _spec in GAMES.values():
    if _spec.env_id not in registry:
        register(
            id=_spec.env_id,
            entry_point="neuralgym.env:NeuralRetroEnv",
            vector_entry_point="neuralgym.vector_env:NeuralRetroVectorEnv",
            max_episode_steps=_spec.max_episode_steps,
            kwargs={"env_id": _spec.env_id, "model": None, "device": "cpu",
                    "denoising_steps": None, "frames_per_call": None},
        )

del _spec

__all__ = ["GAMES", "GameSpec", "RealGameEnv", "RomNotFoundError", "get_spec", "make_real"]
