"""Many dreams in one model call: `gym.make_vec("NeuralBreakout-v0", num_envs=N, model=DIR)`.

`NeuralRetroVectorEnv` is the registered `vector_entry_point` of every Neural id, so
`gym.make_vec` batches the sub-envs into one world-model call per step instead of stepping N
copies of `NeuralRetroEnv`. Each sub-env behaves as `NeuralRetroEnv` would (same spaces, rules,
start contexts, multi-frame rule), and the batch follows Gymnasium 1.x vector semantics.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from neuralgym.env import DreamBatch, context_from_options, expected_options, load_dream_model
from neuralgym.games import get_spec

if TYPE_CHECKING:
    import torch


class NeuralRetroVectorEnv(VectorEnv):
    """`num_envs` dreams of one world model, stepped by one batched model call.

    Spaces: `single_observation_space` and `single_action_space` are those of
    `NeuralRetroEnv` (and of `neuralgym.make_real`); `observation_space` is
    `Box(0, 255, (num_envs, H, W, 3), uint8)`, `action_space` `MultiDiscrete([n] * num_envs)`.
    Rewards (float64), terminations and truncations are `(num_envs,)` arrays; `infos` holds
    each metadata variable as a `(num_envs,)` float64 array and "metadata" as
    `(num_envs, M)` float32, each with its `_key` mask, as `SyncVectorEnv` would give them.

    Autoreset: `AutoresetMode.NEXT_STEP` (Gymnasium's default). The step after a sub-env
    terminates or truncates resets it: its action is ignored, it returns the first
    observation of a new dream with reward 0, terminated and truncated False, and the reset
    info. A new dream starts from a random start context of the model folder, or from the
    context given in `reset(options=...)` if there was one.

    Truncation: each sub-env counts its own steps and truncates at `max_episode_steps`
    (default: the spec's; `gym.make_vec` passes the registered value, and a
    `max_episode_steps=` keyword overrides it). There is no TimeLimit wrapper here.

    Multi-frame models (T = frames_per_call > 1): the same rule as `NeuralRetroEnv`, per
    sub-env. A sub-env serves the T frames of its last call while its action repeats; a
    sub-env whose action differs from its plan (or whose plan is used up) generates again
    from the frames it has served. The sub-envs that need new frames in a step share one
    batched call; the others call nothing, so a batch of sticky agents gets T frames per call.

    Args:
        env_id: the Neural id (set by the registration).
        num_envs: number of dreams B.
        model, device, denoising_steps, frames_per_call, cuda_graphs, decoder, bf16_weights,
            sample_metadata: as for `NeuralRetroEnv` (CUDA graphs: one per batch size of
            the step's model call).
        render_mode: None or "rgb_array" (`render()` returns a tuple of the last frames).
        max_episode_steps: steps after which a sub-env truncates.

    `reset(seed=s)` seeds `np_random` (start contexts) and the torch generator of the
    sampler, so a seed and a sequence of action batches give the same frames. `options` takes
    the keys of `NeuralRetroEnv.reset`, one context for every sub-env.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15,
                "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, env_id: str, num_envs: int = 1, model: str | os.PathLike | None = None,
                 device: str = "cpu", denoising_steps: int | None = None,
                 frames_per_call: int | None = None, render_mode: str | None = None,
                 max_episode_steps: int | None = None, cuda_graphs: bool = False,
                 decoder: str = "auto", bf16_weights: bool = False,
                 sample_metadata: bool = False):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
                or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.game = get_spec(env_id)
        if max_episode_steps is None:
            max_episode_steps = self.game.max_episode_steps
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be at least 1, got {max_episode_steps}")
        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.render_mode = render_mode
        self.single_observation_space = gym.spaces.Box(0, 255, self.game.obs_shape, np.uint8)
        self.single_action_space = gym.spaces.Discrete(self.game.n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.model, self.model_path, self.start_contexts = load_dream_model(
            env_id, model, device, denoising_steps, frames_per_call, cuda_graphs, decoder,
            bf16_weights, sample_metadata)
        self._dreams = DreamBatch(self.model, self.game, self.num_envs)
        self._generator: torch.Generator | None = None
        self._context: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._steps = np.zeros(self.num_envs, np.int64)
        self._prev_done = np.zeros(self.num_envs, bool)

    @property
    def frames_per_call(self) -> int:
        return self.model.frames_per_call

    def _start(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start new dreams in sub-envs `idx`; returns their first frames and metadata."""
        if self._context is not None:
            frames, metadata, actions = (np.repeat(x[None], len(idx), 0) for x in self._context)
        else:
            if self.start_contexts is None:
                from neuralgym.start_contexts import StartContextsError, start_contexts_path

                raise StartContextsError(
                    f"{self.game.env_id}: {start_contexts_path(self.model_path)} is missing, "
                    "so reset() has no start context to pick; write it with `python "
                    "training/make_start_contexts.py --data DATASET --model "
                    f"{self.model_path}`, or pass reset(options=...): "
                    f"{expected_options(self.game, self.model.context)}")
            pick = self.np_random.integers(len(self.start_contexts), size=len(idx))
            sc = self.start_contexts
            frames, metadata, actions = sc.frames[pick], sc.metadata[pick], sc.actions[pick]
        self._dreams.start([int(i) for i in idx], frames, metadata, actions)
        self._steps[idx] = 0
        return frames[:, -1], metadata[:, -1].astype(np.float32)

    def _infos(self, metadata: np.ndarray) -> dict[str, Any]:
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            infos = self._add_info(infos, self.game.info(metadata[i].copy()), i)
        return infos

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        import torch

        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        context = None  # checked before anything changes, so a bad dict leaves the env as it was
        if options:
            context = context_from_options(options, self.game, self.model.context,
                                           self.model.history)
        super().reset(seed=seed)
        self._context = context
        obs, metadata = self._start(np.arange(self.num_envs))
        if seed is not None or self._generator is None:  # drawn after the contexts, as the
            self._generator = torch.Generator(self.model.device).manual_seed(  # single env
                int(self.np_random.integers(2**63 - 1)))
        self._prev_done[:] = False
        return np.array(obs), self._infos(metadata)

    def step(self, actions: Any
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._generator is None:
            raise RuntimeError(f"{self.game.env_id}: call reset() before step()")
        acts = np.asarray(actions)
        if acts.shape != (self.num_envs,):
            raise ValueError(f"{self.game.env_id}: actions must be one per sub-env, shape "
                             f"({self.num_envs},), got {acts.shape}")
        checked = [self.game.check_action(a) for a in acts]
        H, W, C = self.game.obs_shape
        obs = np.empty((self.num_envs, H, W, C), np.uint8)
        metadata = np.empty((self.num_envs, len(self.game.metadata)), np.float32)
        rewards = np.zeros(self.num_envs, np.float64)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        resets = np.flatnonzero(self._prev_done)
        steps = np.flatnonzero(~self._prev_done)
        if len(resets):  # NEXT_STEP autoreset: these ended on the last step
            obs[resets], metadata[resets] = self._start(resets)
        if len(steps):
            frames, prev, cur = self._dreams.step([int(i) for i in steps],
                                                  [checked[i] for i in steps], self._generator)
            obs[steps], metadata[steps] = frames, cur
            rewards[steps] = self.game.rewards(prev, cur)
            terminated[steps] = self.game.terminations(prev, cur)
            self._steps[steps] += 1
            truncated[steps] = self._steps[steps] >= self.max_episode_steps
        self._prev_done = terminated | truncated
        return obs, rewards, terminated, truncated, self._infos(metadata)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None or not self._dreams.started(0):
            return None
        return tuple(d.frame.copy() for d in self._dreams.dreams if d is not None)
