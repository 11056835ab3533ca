"""Policies that play the real games to record data: uniform random, sticky random, scripted
(a ball follower, from the RAM variables in `info`) and PPO.

A policy is called as `policy(obs, info) -> action` and `policy.reset(seed)` starts an
episode (see `neuralgym.recording.Policy`).
"""

from __future__ import annotations

import functools
import os
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
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


class PongScriptedPolicy(RandomPolicy):
    """Pong's right paddle meets the ball where it will arrive, from `info`'s RAM variables
    (player_y, ball_x, ball_y), so that a recording has long rallies and points won, which
    random play almost never makes (benchmarks/results/dream_rewards/ has its rates).

    While the ball comes towards the paddle, its arrival height is extrapolated from its last
    step's motion, folded at the top and bottom walls; while it moves away the paddle follows
    it. The paddle keeps moving between steps, so it is steered by where it will be one step
    on (its position plus `damping` times its last step's motion), and stops within
    `dead_zone` of the aim. Each time the ball turns towards the paddle a random offset in
    [-span, span] is drawn for the aim: hits off the paddle's edges send the ball at angles
    the computer opponent misses. With probability `epsilon` an action is uniform random
    instead. The settings were chosen by trying them on the real game (RIGHT moves the paddle
    up, LEFT down; aiming player_y + 4 at ball_y centres it).
    """

    UP, DOWN, NOOP = 2, 3, 0  # RIGHT, LEFT, NOOP in Pong's minimal action set
    CENTRE = 4  # ball_y - player_y with the ball at the paddle's middle
    HIT_X, TOP, BOTTOM = 186.0, 38.0, 204.0  # ball_x at the paddle; ball_y at the walls

    def __init__(self, n_actions: int = 6, span: int = 3, damping: float = 2.0,
                 dead_zone: float = 5.0, epsilon: float = 0.03):
        super().__init__(n_actions)
        self.span, self.damping, self.dead_zone, self.epsilon = span, damping, dead_zone, epsilon
        self._offset, self._last = 0, None

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._offset, self._last = 0, None

    def arrival(self, bx: float, by: float, vx: float, vy: float) -> float:
        """ball_y when the ball, at (bx, by) moving (vx > 0, vy) a step, reaches HIT_X."""
        y = by + vy * (self.HIT_X - bx) / vx
        height = self.BOTTOM - self.TOP
        y = (y - self.TOP) % (2 * height)  # unfold the bounces off the walls
        return self.TOP + (y if y <= height else 2 * height - y)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        try:
            y, bx, by = (float(info[k]) for k in ("player_y", "ball_x", "ball_y"))
        except KeyError as e:
            raise KeyError(f"the scripted Pong player reads {e} from info; play it on "
                           "NeuralPong-v0 (the real game or its dream)") from None
        ly, lbx, lby, coming = self._last or (y, bx, by, False)
        vx, vy = bx - lbx, by - lby
        if vx > 0 and not coming:  # the ball turns towards the paddle: a new aim
            self._offset = int(self.rng.integers(-self.span, self.span + 1))
        self._last = (y, bx, by, vx > 0)
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        aim = self.arrival(bx, by, vx, vy) + self._offset if vx > 0 and bx > 0 else by
        miss = aim - (y + self.damping * (y - ly) + self.CENTRE)
        if abs(miss) < self.dead_zone:
            return self.NOOP
        return self.DOWN if miss > 0 else self.UP


SCRIPTED = {"NeuralPong-v0": PongScriptedPolicy}  # env id -> its scripted player


def scripted_policy(env_id: str, n_actions: int) -> RandomPolicy:
    """The scripted player of a game (`SCRIPTED`), or a ValueError naming the games that have
    one."""
    if env_id not in SCRIPTED:
        raise ValueError(f"no scripted player for {env_id}; there is one for "
                         f"{', '.join(SCRIPTED)} (use random, sticky-random or ppo)")
    return SCRIPTED[env_id](n_actions)


# -- PPO ----------------------------------------------------------------------------------
# The observation PPO sees: each RGB frame in grayscale, area-resized to 84x84, and the last 4
# of them stacked (after a reset the first frame fills the stack). `preprocess_frame` is the
# one implementation: `wrap_ppo_observation` applies it to an env for training
# (agents/train_ppo.py), `PPOPolicy` applies it to raw frames when recording.

PPO_FRAME_SIZE = 84
PPO_FRAME_STACK = 4


@functools.lru_cache(maxsize=8)
def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Area resize of one axis as taps: output o = sum_k weight[o, k] * input[index[o, k]].

    Both are (n_out, K), K the most input pixels one output pixel covers.
    """
    edges = np.arange(n_out + 1) * (n_in / n_out)  # output pixel o covers [edges[o], edges[o+1])
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0, None)  # (n_out, n_in)
    k = int((overlap > 0).sum(1).max())
    index = np.argsort(overlap <= 0, axis=1, kind="stable")[:, :k]  # covered pixels first
    weight = np.take_along_axis(overlap, index, 1)
    return index, (weight / weight.sum(1, keepdims=True)).astype(np.float32)


def preprocess_frame(frame: np.ndarray, size: int = PPO_FRAME_SIZE) -> np.ndarray:
    """RGB frame (H, W, 3) uint8 -> grayscale (size, size) uint8, area-averaged.

    Grayscale with ITU-R 601 weights and area averaging, as OpenCV's RGB2GRAY and INTER_AREA
    (averaging keeps thin things such as balls and bullets visible). Plain numpy, no OpenCV
    (which gymnasium's ResizeObservation needs) and no BLAS (whose threads crawl beside
    torch's on a small CPU).
    """
    f = np.asarray(frame, np.float32)
    gray = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]  # (H, W)
    rows, row_w = _area_taps(gray.shape[0], size)
    cols, col_w = _area_taps(gray.shape[1], size)
    tall = sum(row_w[:, k, None] * gray[rows[:, k]] for k in range(rows.shape[1]))  # (size, W)
    small = sum(col_w[:, k] * tall[:, cols[:, k]] for k in range(cols.shape[1]))  # (size, size)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _area_matrix(n_in: int, n_out: int, device: str) -> Any:
    """`_area_taps` as a dense (n_out, n_in) float64 torch matrix on `device`: output =
    matrix @ input (made once per shape and device)."""
    import torch

    index, weight = _area_taps(n_in, n_out)
    matrix = np.zeros((n_out, n_in), np.float64)
    np.add.at(matrix, (np.arange(n_out)[:, None], index), weight)
    return torch.from_numpy(matrix).to(device)


def preprocess_frames(frames: np.ndarray, device: Any = "cpu", size: int = PPO_FRAME_SIZE
                      ) -> np.ndarray:
    """`preprocess_frame` of a batch, in torch on `device`: (N, H, W, 3) uint8 -> (N, size,
    size) uint8.

    The same grayscale weights and area averaging as two matrix products (in float64, so no
    TF32 setting can touch them), for the batched dream on a GPU: one upload and a few
    kernels instead of N numpy passes on the CPU. The sums run in another order and precision
    than numpy's float32, so a pixel within rounding of a half can land one grey level away
    from `preprocess_frame`'s; nothing else differs.
    """
    import torch

    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"expected frames (N, H, W, 3), got shape {f.shape}")
    where = str(torch.device(device))
    rows = _area_matrix(f.shape[1], size, where)  # (size, H)
    cols = _area_matrix(f.shape[2], size, where)  # (size, W)
    x = torch.from_numpy(np.ascontiguousarray(f)).to(device).float()  # (N, H, W, 3)
    gray = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]  # (N, H, W)
    small = rows @ gray.double() @ cols.T  # (N, size, size)
    return small.round().clamp_(0, 255).to(torch.uint8).cpu().numpy()


def wrap_ppo_observation(env: gym.Env) -> gym.Env:
    """`env` with PPO's observation: (4, 84, 84) uint8, the last 4 preprocessed frames."""
    space = gym.spaces.Box(0, 255, (PPO_FRAME_SIZE, PPO_FRAME_SIZE), np.uint8)
    env = gym.wrappers.TransformObservation(env, preprocess_frame, space)
    return gym.wrappers.FrameStackObservation(env, PPO_FRAME_STACK, padding_type="reset")


@functools.lru_cache(maxsize=4)
def _load_ppo(path: str, mtime_ns: int) -> Any:
    """A PPO model, loaded once per file version: the policies of many envs share it (they only
    run its forward pass; each keeps its own frame stack and generator)."""
    from stable_baselines3 import PPO

    return PPO.load(path, device="cpu")


class PPOPolicy:
    """Actions sampled from a stable-baselines3 PPO model saved by `agents/train_ppo.py`.

    The policy sees what the model saw in training (`preprocess_frame`, last 4 frames
    stacked). Actions are sampled from the model's action distribution with a numpy
    generator seeded by `reset(seed)`, so the same seed gives the same actions; with
    `deterministic=True` the most likely action is taken instead.

    Args:
        path: the model's .zip file.
        n_actions: if given, the model's action space must be Discrete(n_actions).
        deterministic: take the most likely action instead of sampling.
    """

    def __init__(self, path: str | os.PathLike, n_actions: int | None = None,
                 deterministic: bool = False):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"PPO model {path} does not exist; train one with "
                f"`python agents/train_ppo.py --env ID --steps N --out {path}`"
            )
        self.model = _load_ppo(str(path.resolve()), path.stat().st_mtime_ns)
        space = self.model.action_space
        if not isinstance(space, gym.spaces.Discrete) or (
            n_actions is not None and int(space.n) != n_actions
        ):
            raise ValueError(
                f"PPO model {path} has action space {space}, the game has Discrete({n_actions})"
            )
        want = (PPO_FRAME_STACK, PPO_FRAME_SIZE, PPO_FRAME_SIZE)
        if self.model.observation_space.shape != want:
            raise ValueError(
                f"PPO model {path} observes {self.model.observation_space.shape}, expected "
                f"{want} (a model trained by agents/train_ppo.py)"
            )
        self.n_actions = int(space.n)
        self.deterministic = deterministic
        self.rng = np.random.default_rng()
        self._stack: deque[np.ndarray] = deque(maxlen=PPO_FRAME_STACK)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._stack.clear()

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """Add a raw frame (H, W, 3) to the stack; returns the model's input (4, 84, 84)."""
        frame = preprocess_frame(obs)
        if not self._stack:  # first frame of an episode fills the stack, as after a reset
            self._stack.extend([frame] * PPO_FRAME_STACK)
        else:
            self._stack.append(frame)
        return np.stack(self._stack)

    def action_probs(self, stacked: np.ndarray) -> np.ndarray:
        """The model's action probabilities (n_actions,) float64 for one stacked observation."""
        import torch

        with torch.no_grad():
            x, _ = self.model.policy.obs_to_tensor(stacked)
            probs = self.model.policy.get_distribution(x).distribution.probs[0]
        p = probs.double().cpu().numpy()
        return p / p.sum()

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        p = self.action_probs(self.observe(obs))
        if self.deterministic:
            return int(np.argmax(p))
        return int(self.rng.choice(self.n_actions, p=p))


NAMED = ("random", "sticky-random", "scripted")  # policies by name; anything else is a PPO .zip


def make_policy(policy: str, env_id: str, n_actions: int, deterministic: bool = False
                ) -> RandomPolicy | PPOPolicy:
    """A policy by name: 'random', 'sticky-random', 'scripted' (the game's scripted player,
    `SCRIPTED`), or the path of a PPO model (.zip from agents/train_ppo.py; `deterministic`
    takes its most likely action)."""
    if policy == "random":
        return RandomPolicy(n_actions)
    if policy == "sticky-random":
        return StickyRandomPolicy(n_actions)
    if policy == "scripted":
        return scripted_policy(env_id, n_actions)
    return PPOPolicy(policy, n_actions=n_actions, deterministic=deterministic)
