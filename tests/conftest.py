"""Shared fixtures: a tiny recorded Breakout dataset (random policy, real ALE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralgym import make_real
from neuralgym.data import Dataset, save_episode
from neuralgym.policies import RandomPolicy
from neuralgym.recording import record_episode


def record_dataset(root: Path, env_id: str, episodes: int, max_steps: int,
                   state_every: int = 10) -> Dataset:
    env = make_real(env_id).unwrapped
    policy = RandomPolicy(env.action_space.n)
    for k in range(episodes):
        ep = record_episode(env, policy, seed=k, max_steps=max_steps, state_every=state_every,
                            agent="random")
        save_episode(ep, root / "episodes" / f"random-{k:04d}")
    env.close()
    Dataset.reindex(root)
    return Dataset(root)


@pytest.fixture(scope="session")
def dataset_recorder():
    """`record_dataset(root, env_id, episodes, max_steps, state_every=10)` for tests that
    need a dataset of their own."""
    return record_dataset


@pytest.fixture(scope="session")
def breakout_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """6 Breakout episodes of at most 120 steps, states every 10 steps."""
    return record_dataset(tmp_path_factory.mktemp("breakout"), "NeuralBreakout-v0", 6, 120)
