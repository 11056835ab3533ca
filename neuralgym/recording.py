"""Play a real env with a policy and record what happens as an `Episode`."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from neuralgym.data import Episode, EpisodeRecorder
from neuralgym.real_env import RealGameEnv


class Policy(Protocol):
    """Chooses actions from observations; `reset(seed)` starts a new episode."""

    def reset(self, seed: int | None = None) -> None: ...

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int: ...


def record_episode(
    env: RealGameEnv,
    policy: Policy,
    seed: int,
    max_steps: int,
    state_every: int = 50,
    frames: bool = True,
    **info: Any,
) -> Episode:
    """Play one episode of at most `max_steps` steps (the last one is marked truncated).

    The emulator state is saved at step 0 and every `state_every` steps, so that paired
    evaluation can restart the real game there. `frames` False keeps no frames (the game's
    variables, actions and states only). `info` is stored with the episode.
    """
    obs, inf = env.reset(seed=seed)
    policy.reset(seed)
    rec = EpisodeRecorder(obs, inf["metadata"], env.get_state(), frames=frames)
    for t in range(1, max_steps + 1):
        action = policy(obs, inf)
        obs, reward, terminated, truncated, inf = env.step(action)
        truncated = truncated or (t == max_steps and not terminated)
        state = env.get_state() if t % state_every == 0 and not terminated else None
        rec.add(action, obs, inf["metadata"], reward, terminated, truncated, state)
        if terminated or truncated:
            break
    return rec.finish(
        env_id=env.game.env_id,
        metadata_names=list(env.game.metadata_names),
        seed=seed,
        state_every=state_every,
        frames=frames,
        **info,
    )
