"""Random, sticky-random, scripted and PPO policies; PPO's observation preprocessing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from neuralgym import make_real
from neuralgym.policies import (
    PPO_FRAME_SIZE,
    PPO_FRAME_STACK,
    PongScriptedPolicy,
    PPOPolicy,
    RandomPolicy,
    StickyRandomPolicy,
    make_policy,
    preprocess_frame,
    preprocess_frames,
    wrap_ppo_observation,
)

OBS = np.zeros((210, 160, 3), np.uint8)


def mean_run_length(actions: list[int]) -> float:
    changes = 1 + sum(a != b for a, b in zip(actions, actions[1:], strict=False))
    return len(actions) / changes


@pytest.mark.parametrize("cls", [RandomPolicy, StickyRandomPolicy])
def test_same_seed_same_actions(cls: type) -> None:
    policy = cls(4)
    runs = []
    for seed in (1, 1, 2):
        policy.reset(seed)
        runs.append([policy(OBS, {}) for _ in range(200)])
    assert runs[0] == runs[1] != runs[2]
    assert set(runs[0]) == {0, 1, 2, 3}


def points(policy, steps: int = 2000, seed: int = 0) -> tuple[int, int]:
    """Points (won, lost) by `policy` in `steps` steps of real Pong, games restarting."""
    env = make_real("NeuralPong-v0")
    policy.reset(seed)
    obs, info = env.reset(seed=seed)
    won = lost = 0
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        won, lost = won + (reward > 0), lost + (reward < 0)
        if terminated or truncated:
            obs, info = env.reset()
    env.close()
    return won, lost


def test_pong_scripted_player_rallies_and_scores() -> None:
    """Meeting the ball, the scripted player loses points far more slowly than random play
    (a quarter of its rate) and wins more; the same seed gives the same game."""
    scripted = make_policy("scripted", "NeuralPong-v0", 6)
    assert isinstance(scripted, PongScriptedPolicy)
    s_won, s_lost = points(scripted)
    r_won, r_lost = points(RandomPolicy(6))
    assert s_lost < r_lost / 4 and s_won >= max(3, 2 * r_won), (s_won, s_lost, r_won, r_lost)
    assert points(scripted) == (s_won, s_lost)


def test_scripted_player_errors() -> None:
    with pytest.raises(ValueError, match="no scripted player for NeuralBreakout-v0"):
        make_policy("scripted", "NeuralBreakout-v0", 4)
    with pytest.raises(KeyError, match="reads 'ball_x' from info"):
        PongScriptedPolicy()(OBS, {"player_y": 1.0})
    assert isinstance(make_policy("sticky-random", "NeuralBreakout-v0", 4), StickyRandomPolicy)


def test_sticky_random_holds_actions_longer() -> None:
    uniform, sticky = RandomPolicy(4), StickyRandomPolicy(4, mean_run=8.0)
    uniform.reset(0)
    sticky.reset(0)
    u = mean_run_length([uniform(OBS, {}) for _ in range(5000)])
    s = mean_run_length([sticky(OBS, {}) for _ in range(5000)])
    assert u == pytest.approx(4 / 3, rel=0.1)  # a run ends when a new action differs: p = 3/4
    assert s > 3 * u


def test_preprocess_frame() -> None:
    rng = np.random.default_rng(0)
    for shape in [(210, 160, 3), (224, 320, 3)]:
        out = preprocess_frame(rng.integers(0, 256, shape, dtype=np.uint8))
        assert out.shape == (PPO_FRAME_SIZE, PPO_FRAME_SIZE) and out.dtype == np.uint8
    assert (preprocess_frame(np.full((210, 160, 3), 255, np.uint8)) == 255).all()
    # An integer factor is a block mean of the grayscale image.
    frame = rng.integers(0, 256, (168, 252, 3), dtype=np.uint8)
    gray = frame.astype(np.float64) @ [0.299, 0.587, 0.114]
    blocks = gray.reshape(84, 2, 84, 3).mean(axis=(1, 3))
    assert np.abs(preprocess_frame(frame) - blocks).max() <= 0.5 + 1e-3
    # A thin bright object (a 2x1 ball) stays visible.
    ball = np.zeros((210, 160, 3), np.uint8)
    ball[100:102, 80] = 255
    assert preprocess_frame(ball).max() > 0


def test_preprocess_frames_is_preprocess_frame_batched() -> None:
    """The torch batch form gives preprocess_frame's pixels, up to one grey level on pixels
    within float rounding of a half, on game frames and on noise; it leaves the process's
    matmul precision as it found it."""
    import torch

    rng = np.random.default_rng(1)
    frames = []
    for env_id in ("NeuralBreakout-v0", "NeuralPong-v0"):
        env = make_real(env_id)
        obs, _ = env.reset(seed=0)
        for _ in range(20):
            obs, *_ = env.step(env.action_space.sample())
            frames.append(obs)
        env.close()
    frames += list(rng.integers(0, 256, (8, 210, 160, 3), dtype=np.uint8))
    batch = np.stack(frames)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        out = preprocess_frames(batch)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    ref = np.stack([preprocess_frame(f) for f in batch])
    assert out.shape == ref.shape == (len(batch), PPO_FRAME_SIZE, PPO_FRAME_SIZE)
    assert out.dtype == np.uint8
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert (out[:40] == ref[:40]).mean() > 0.9999  # game frames: flat colours, exact
    with pytest.raises(ValueError, match="expected frames"):
        preprocess_frames(batch[0])


@pytest.fixture(scope="module")
def ppo_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An untrained PPO CnnPolicy on Breakout's PPO observation, saved as train_ppo.py does."""
    import torch
    from stable_baselines3 import PPO

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 forwards: more threads only contend on a busy CPU
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: wrap_ppo_observation(make_real("NeuralBreakout-v0"))])
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
    path = tmp_path_factory.mktemp("ppo") / "model.zip"
    model.save(path)
    venv.close()
    yield path
    torch.set_num_threads(threads)


def test_ppo_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="agents/train_ppo.py"):
        PPOPolicy(tmp_path / "nope.zip")


def test_ppo_policy_wrong_game(ppo_model: Path) -> None:
    with pytest.raises(ValueError, match="Discrete\\(6\\)"):
        PPOPolicy(ppo_model, n_actions=6)


def test_ppo_policy_sees_what_training_sees(ppo_model: Path) -> None:
    """PPOPolicy's stack of raw frames equals the training wrappers' observation."""
    policy = PPOPolicy(ppo_model, n_actions=4)
    wrapped, raw = wrap_ppo_observation(make_real("NeuralBreakout-v0")), make_real(
        "NeuralBreakout-v0").unwrapped
    for seed in (0, 1):  # the second episode checks that reset empties the stack
        want, _ = wrapped.reset(seed=seed)
        obs, info = raw.reset(seed=seed)
        policy.reset(seed)
        for t in range(12):
            got = policy.observe(obs)
            assert got.shape == (PPO_FRAME_STACK, PPO_FRAME_SIZE, PPO_FRAME_SIZE)
            np.testing.assert_array_equal(got, want)
            action = 1 if t == 0 else (t % 4)
            want, *_ = wrapped.step(action)
            obs, *_ = raw.step(action)
    assert len({policy.observe(obs).tobytes(), want.tobytes()}) == 1
    wrapped.close()
    raw.close()


def test_ppo_policy_seeded_sampling(ppo_model: Path) -> None:
    policy = PPOPolicy(ppo_model, n_actions=4)
    env = make_real("NeuralBreakout-v0").unwrapped
    obs, info = env.reset(seed=0)
    p = policy.action_probs(policy.observe(obs))
    assert p.shape == (4,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    runs = []
    for seed in (5, 5, 6):
        policy.reset(seed)
        runs.append([policy(obs, info) for _ in range(30)])
    assert runs[0] == runs[1] != runs[2]
    greedy = PPOPolicy(ppo_model, deterministic=True)
    greedy.reset(0)
    assert greedy(obs, info) == int(np.argmax(p))
    assert greedy.model is policy.model  # one load of the file, shared by every env's policy
    env.close()


def test_pong_scripted_arrival_folds_at_the_walls() -> None:
    """The extrapolated arrival height bounces off the top and bottom walls."""
    p = PongScriptedPolicy()
    top, bottom, x = p.TOP, p.BOTTOM, p.HIT_X
    assert p.arrival(x - 40, 100, 4, 2) == pytest.approx(120)  # 10 steps, no bounce
    assert p.arrival(x - 40, bottom - 5, 4, 2) == pytest.approx(bottom - 15)  # off the bottom
    assert p.arrival(x - 40, top + 5, 4, -2) == pytest.approx(top + 15)  # off the top
    assert top <= p.arrival(0, 120, 1, 37) <= bottom  # several bounces stay on the court
