"""The real game behind a Neural id, with the dream env's spaces, rewards and `info` keys.

`make_real("NeuralBreakout-v0")` returns the emulator (ALE or stable-retro) wrapped so that
swapping it for `gym.make("NeuralBreakout-v0")` is a change of id:

- observation: Box(0, 255, (H, W, 3), uint8) at the game's native resolution
- action: Discrete(n), the spec's action set (Genesis: button combos, held for 4 frames)
- reward, terminated: the spec's rules applied to (previous metadata, metadata)
- info: each metadata variable by name, and all of them as one float32 vector "metadata"

`get_state()` / `set_state(state)` save and restore the emulator bit-exactly (the frames that
follow a restore equal the recorded ones), so paired evaluation can restart the real game at a
recorded step.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import gymnasium as gym
import numpy as np

from neuralgym.games import GameSpec, get_spec


class RomNotFoundError(FileNotFoundError):
    """The game's ROM is not where the emulator looks for it."""


class RealGameEnv(gym.Env):
    """A real game (ALE or stable-retro) seen through a `GameSpec`.

    Args:
        spec: the game.
        render_mode: None or "rgb_array".
        state: stable-retro start state (default: the spec's default state).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, spec: GameSpec, render_mode: str | None = None, state: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.game = spec
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, spec.obs_shape, np.uint8)
        self.action_space = gym.spaces.Discrete(spec.n_actions)
        self._obs: np.ndarray | None = None
        self._meta: np.ndarray | None = None
        if spec.backend == "ale":
            self._init_ale()
        else:
            self._init_retro(state or spec.default_state)

    # -- backends -------------------------------------------------------------------------

    def _init_ale(self) -> None:
        from ale_py.env import AtariEnv

        self._env = AtariEnv(
            game=self.game.game,
            obs_type="rgb",
            frameskip=self.game.frameskip,
            repeat_action_probability=0.0,
            full_action_space=False,
        )
        self._ale = self._env.ale
        meanings = tuple(self._env.get_action_meanings())
        if meanings != self.game.action_names:
            raise RuntimeError(f"{self.game.env_id}: ALE actions {meanings} differ from the spec")

    def _init_retro(self, state: str) -> None:
        import stable_retro

        game = self.game.game
        try:
            stable_retro.data.get_romfile_path(game)
        except FileNotFoundError:
            raise RomNotFoundError(
                f"{self.game.env_id}: stable-retro has no ROM for {game}. "
                + (self.game.rom_help or "Import it with `python3 -m stable_retro.import DIR`.")
            ) from None
        if self.game.states and state not in self.game.states:
            raise ValueError(
                f"{self.game.env_id}: unknown start state {state!r}; "
                f"choose one of {', '.join(self.game.states)}"
            )
        info = self._info_file(game) if self.game.extra_variables else None
        self._env = stable_retro.make(
            game,
            state=state,
            scenario=self.game.scenario,
            info=info,
            use_restricted_actions=stable_retro.Actions.ALL,
            render_mode=None,
        )
        buttons = self._env.buttons
        self._combos = np.zeros((self.game.n_actions, len(buttons)), np.int8)
        for a, combo in enumerate(self.game.buttons):
            for b in combo:
                self._combos[a, buttons.index(b)] = 1

    def _info_file(self, game: str) -> str:
        """The integration's data.json plus the spec's extra RAM variables, as a temp file."""
        import stable_retro

        with open(stable_retro.data.get_file_path(game, "data.json")) as f:
            data = json.load(f)
        data["info"].update(self.game.extra_variables)
        fd, path = tempfile.mkstemp(prefix=f"neuralgym-{game}-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        self._info_path = path
        return path

    def _read_metadata(self) -> np.ndarray:
        if self.game.backend == "ale":
            source: Any = self._ale.getRAM()
        else:
            source = self._env.data.lookup_all()
        return np.array([v.read(source) for v in self.game.metadata], dtype=np.float32)

    # -- gym API --------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"{self.game.env_id}: the real env takes no reset options")
        obs, _ = self._env.reset(seed=seed)
        self._obs, self._meta = obs, self._read_metadata()
        return obs, self.game.info(self._meta)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._meta is None:
            raise RuntimeError(f"{self.game.env_id}: call reset() before step()")
        a = self.game.check_action(action)
        if self.game.backend == "ale":
            obs, *_ = self._env.step(a)
        else:
            for _ in range(self.game.frameskip):
                obs, *_ = self._env.step(self._combos[a])
        prev, self._meta = self._meta, self._read_metadata()
        self._obs = obs
        reward = float(self.game.rewards(prev, self._meta))
        terminated = bool(self.game.terminations(prev, self._meta))
        return obs, reward, terminated, False, self.game.info(self._meta)

    def render(self) -> np.ndarray | None:
        return None if self._obs is None or self.render_mode is None else self._obs.copy()

    def close(self) -> None:
        self._env.close()
        if getattr(self, "_info_path", None):
            os.unlink(self._info_path)
            self._info_path = None

    # -- emulator state -------------------------------------------------------------------

    def get_state(self) -> bytes:
        """The emulator state (RNG included), to restart the game here with `set_state`."""
        if self.game.backend == "ale":
            return bytes(self._ale.cloneState(include_rng=True).serialize())
        return bytes(self._env.em.get_state())

    def set_state(self, state: bytes) -> dict[str, Any]:
        """Restore a state from `get_state`; returns the `info` (metadata) of that step.

        The emulators do not re-render the screen on restore, so the frame of the restored
        step is the one recorded beside the state; the frames of the steps after it are exact.
        """
        if self.game.backend == "ale":
            from ale_py import ALEState

            self._ale.restoreState(ALEState(state))
        else:
            if self._meta is None:  # stable-retro steps only after a first reset
                self._env.reset()
            self._env.em.set_state(state)
            self._env.data.update_ram()
        self._obs, self._meta = None, self._read_metadata()
        return self.game.info(self._meta)


def make_real(env_id: str, **kwargs: Any) -> gym.Env:
    """The real game for a Neural id, with the same spaces, rules, info keys and time limit."""
    spec = get_spec(env_id)
    return gym.wrappers.TimeLimit(RealGameEnv(spec, **kwargs), spec.max_episode_steps)
