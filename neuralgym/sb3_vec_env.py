"""A Gymnasium 1.x `VectorEnv` (such as the batched dream) as a stable-baselines3 `VecEnv`.

    venv = gym.make_vec("NeuralBreakout-v0", num_envs=64, model=DIR, device="cuda")
    env = ppo_vec_env(venv)  # PPO's observation, as agents/train_ppo.py trains on the real game
    PPO("CnnPolicy", env).learn(1_000_000)

SB3's conventions, as its `DummyVecEnv` gives them:

- `step_wait()` returns (obs, rewards float32, dones bool, infos: one dict per sub-env);
  `dones = terminated | truncated`; a done sub-env's info has "terminal_observation" (its last
  observation, preprocessed and stacked like every other) and "TimeLimit.truncated"
  (`truncated and not terminated`), and "episode" = {"r": return, "l": length, "t": seconds
  since the adapter was made}, as SB3's `Monitor` writes it, with the game's own rewards.
- `reset()` passes the seed and options set by `seed()` / `set_options()` once.
- Observations: each frame goes through `preprocess` (e.g. `neuralgym.policies.
  preprocess_frame`) and the last `frame_stack` of them are stacked on a new first axis; a
  new episode fills its stack with its first frame, as Gymnasium's
  `FrameStackObservation(padding_type="reset")` does in `wrap_ppo_observation`.

Autoreset. With `AutoresetMode.SAME_STEP` (e.g. `SyncVectorEnv(..., autoreset_mode=
"SameStep")`) a done sub-env's new first observation comes in the same step, so the adapter
is exactly SB3's `DummyVecEnv`. With `AutoresetMode.NEXT_STEP` (Gymnasium's default and the
dream's) the new episode's first frame only comes with the *next* step, whose action that
sub-env ignores. SB3 needs an observation for every sub-env at every step, so after a done
step the adapter returns the terminal observation again as the sub-env's "first" observation;
the next step then starts the episode (reward 0, not done, its first frame filling the
stack). That one reset step per episode is the only difference from `DummyVecEnv`: it adds no
reward and is not counted in the episode's length ("l"). No adapter can avoid it without
partial resets, which the dream's vector env does not offer. `AutoresetMode.DISABLED` is
refused.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from neuralgym.policies import (
    PPO_FRAME_SIZE,
    PPO_FRAME_STACK,
    preprocess_frame,
    preprocess_frames,
)


def _autoreset_mode(venv: VectorEnv) -> AutoresetMode:
    mode = (getattr(venv, "metadata", None) or {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return AutoresetMode(mode) if isinstance(mode, str) else mode


def split_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's vector infos (arrays with `_key` masks) -> one dict per sub-env.

    A key without a mask is given to every sub-env; nested dicts are split the same way.
    """
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue  # a mask
        mask = infos.get(f"_{key}")
        parts = (split_infos(value, num_envs) if isinstance(value, dict)
                 else None)
        for i in range(num_envs):
            if mask is not None and not mask[i]:
                continue
            if parts is not None:
                out[i][key] = parts[i]
            elif isinstance(value, np.ndarray) and value.shape[:1] == (num_envs,):
                v = value[i]
                out[i][key] = v.item() if isinstance(v, np.generic) else v
            else:
                out[i][key] = value
    return out


class GymnasiumVectorToSB3(VecEnv):
    """A Gymnasium `VectorEnv` seen through SB3's `VecEnv` API (see the module docstring).

    Args:
        venv: the Gymnasium vector env, NEXT_STEP or SAME_STEP autoreset.
        preprocess: applied to each sub-env's observation, e.g. `preprocess_frame`; None
            keeps the observations as they are.
        frame_space: the space of one preprocessed frame (required with `preprocess`).
        frame_stack: stack the last this many (preprocessed) frames on a new first axis;
            None: no stacking (the observation is the frame).
        clip_rewards: return the sign of each reward (the "episode" returns stay the game's).
        batch_preprocess: `preprocess` of a whole batch of observations (N, ...) at once, for
            the observations of every step (e.g. `preprocess_frames` on the dream's GPU);
            `preprocess` stays for the odd single one (SAME_STEP final observations).
    """

    def __init__(self, venv: VectorEnv, preprocess: Callable[[np.ndarray], np.ndarray]
                 | None = None, frame_space: gym.spaces.Box | None = None,
                 frame_stack: int | None = None, clip_rewards: bool = False,
                 batch_preprocess: Callable[[np.ndarray], np.ndarray] | None = None):
        if not isinstance(venv, VectorEnv):
            raise TypeError(f"expected a gymnasium.vector.VectorEnv, got {type(venv).__name__}")
        self.mode = _autoreset_mode(venv)
        if self.mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"the vector env's autoreset mode is {self.mode.value}; SB3 needs "
                             "autoreset (NextStep or SameStep)")
        if preprocess is not None and frame_space is None:
            raise ValueError("pass frame_space, the space of one preprocessed frame")
        if batch_preprocess is not None and preprocess is None:
            raise ValueError("batch_preprocess needs preprocess, its one-frame form")
        if frame_stack is not None and frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1 or None, got {frame_stack}")
        self.venv = venv
        self.preprocess = preprocess
        self.batch_preprocess = batch_preprocess
        self.frame_stack = frame_stack
        self.clip_rewards = clip_rewards
        frame = frame_space if preprocess is not None else venv.single_observation_space
        space = frame if frame_stack is None else batch_space(frame, frame_stack)
        n = int(venv.num_envs)
        self._obs = np.zeros((n, *space.shape), space.dtype)
        self._returns = np.zeros(n, np.float64)
        self._lengths = np.zeros(n, np.int64)
        self._needs_reset = np.zeros(n, bool)  # NEXT_STEP: done last step, resets this step
        self._actions: np.ndarray | None = None
        self._t0 = time.time()
        super().__init__(n, space, venv.single_action_space)

    # -- observations ----------------------------------------------------------------------

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        return obs if self.preprocess is None else self.preprocess(obs)

    def _frames(self, obs: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Every sub-env's observation, preprocessed."""
        if self.batch_preprocess is not None:
            return self.batch_preprocess(obs)
        return [self._frame(o) for o in obs]

    def _start(self, i: int, frame: np.ndarray) -> None:
        """Sub-env i's first (preprocessed) frame of an episode."""
        if self.frame_stack is None:
            self._obs[i] = frame
        else:
            self._obs[i] = frame[None]  # the first frame fills the stack
        self._returns[i], self._lengths[i] = 0.0, 0

    def _push(self, i: int, frame: np.ndarray) -> None:
        if self.frame_stack is None:
            self._obs[i] = frame
        else:
            self._obs[i, :-1] = self._obs[i, 1:]
            self._obs[i, -1] = frame

    # -- VecEnv API ------------------------------------------------------------------------

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, infos = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = split_infos(infos, self.num_envs)
        frames = self._frames(obs)
        for i in range(self.num_envs):
            self._start(i, frames[i])
        self._needs_reset[:] = False
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        rewards = np.asarray(rewards, np.float64)
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        dones = terminated | truncated
        per_env = split_infos(infos, self.num_envs)
        frames = self._frames(obs)
        out_rewards = np.zeros(self.num_envs, np.float32)
        out_infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            info = per_env[i]
            if self._needs_reset[i]:  # NEXT_STEP reset step: the action was ignored
                self._start(i, frames[i])
                self.reset_infos[i] = info
                out_infos.append({**info, "TimeLimit.truncated": False})
                dones[i] = False
                continue
            final_info = info.pop("final_info", None)
            final_obs = info.pop("final_obs", None)
            if dones[i] and self.mode == AutoresetMode.SAME_STEP:
                self.reset_infos[i] = info
                info = dict(final_info or {})
                self._push(i, self._frame(final_obs))
            else:
                self._push(i, frames[i])
            self._returns[i] += rewards[i]
            self._lengths[i] += 1
            out_rewards[i] = np.sign(rewards[i]) if self.clip_rewards else rewards[i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if dones[i]:
                info["terminal_observation"] = self._obs[i].copy()
                info["episode"] = {"r": round(float(self._returns[i]), 6),
                                   "l": int(self._lengths[i]),
                                   "t": round(time.time() - self._t0, 6)}
                if self.mode == AutoresetMode.SAME_STEP:
                    self._start(i, frames[i])
            out_infos.append(info)
        self._needs_reset = dones & (self.mode == AutoresetMode.NEXT_STEP)
        return self._obs.copy(), out_rewards, dones, out_infos

    def close(self) -> None:
        self.venv.close()

    def _sub_envs(self) -> Sequence[Any] | None:
        return getattr(self.venv, "envs", None)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Sub-env attributes where the vector env has sub-envs (SyncVectorEnv), else the
        vector env's attribute, once per index."""
        idx = list(self._get_indices(indices))
        envs = self._sub_envs()
        if envs is not None:
            return [envs[i].get_wrapper_attr(attr_name) for i in idx]
        value = getattr(self.venv, attr_name)
        return [value for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        envs = self._sub_envs()
        if envs is not None:
            for i in self._get_indices(indices):
                envs[i].set_wrapper_attr(attr_name, value)
        else:
            setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        idx = list(self._get_indices(indices))
        envs = self._sub_envs()
        if envs is not None:
            return [envs[i].get_wrapper_attr(method_name)(*method_args, **method_kwargs)
                    for i in idx]
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
                       ) -> list[bool]:
        from stable_baselines3.common.env_util import is_wrapped

        idx = list(self._get_indices(indices))
        envs = self._sub_envs()
        if envs is not None:
            return [is_wrapped(envs[i], wrapper_class) for i in idx]
        return [False for _ in idx]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        if frames is None:
            return [None] * self.num_envs
        return list(frames)


PPO_FRAME_SPACE = gym.spaces.Box(0, 255, (PPO_FRAME_SIZE, PPO_FRAME_SIZE), np.uint8)


def ppo_vec_env(venv: VectorEnv, clip_rewards: bool = False) -> GymnasiumVectorToSB3:
    """`venv` with the observation `agents/train_ppo.py` trains on and `PPOPolicy` plays with:
    `preprocess_frame` (grayscale 84x84) of each frame, the last 4 stacked, (4, 84, 84) uint8,
    the space of `wrap_ppo_observation` on the real game. A dream on a GPU (a vector env with
    a `model` on CUDA) preprocesses each step's batch there (`preprocess_frames`)."""
    import torch

    device = getattr(getattr(venv, "model", None), "device", None)
    batch = None
    if device is not None and torch.device(device).type == "cuda":
        batch = functools.partial(preprocess_frames, device=device)
    return GymnasiumVectorToSB3(venv, preprocess_frame, PPO_FRAME_SPACE, PPO_FRAME_STACK,
                                clip_rewards=clip_rewards, batch_preprocess=batch)
