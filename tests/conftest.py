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


def build_tiny_world_model(root: Path, env_id: str = "NeuralBreakout-v0",
                           frames_per_call: int = 1, seed: int = 0) -> Path:
    """An untrained world-model folder with tiny components (random weights, real shapes)."""
    import torch

    from neuralgym.games import get_spec
    from neuralgym.model_folder import ModelFolder
    from neuralgym.models.denoiser import Denoiser, DenoiserConfig
    from neuralgym.models.metadata import MetadataConfig, MetadataPredictor
    from neuralgym.models.vae import FrameVAE, VAEConfig

    torch.manual_seed(seed)
    spec = get_spec(env_id)
    H, W, _ = spec.obs_shape
    M = len(spec.metadata)
    vae_cfg = VAEConfig(frame_height=H, frame_width=W, block_out_channels=(4, 8, 8),
                        norm_num_groups=4, latent_channels=4)
    vae = FrameVAE(vae_cfg)
    C, (h, w) = vae_cfg.latent_channels, vae_cfg.latent_hw
    meta_cfg = MetadataConfig(
        metadata_names=spec.metadata_names, kinds=tuple(v.kind for v in spec.metadata),
        num_classes=tuple(8 if v.kind == "categorical" else 0 for v in spec.metadata),
        mean=(0.0,) * M, std=(1.0,) * M, n_actions=spec.n_actions, latent_channels=C,
        latent_hw=(h, w), hidden=16, layers=1, window=4, action_dim=8, latent_width=4,
        latent_dim=16)
    den_cfg = DenoiserConfig(
        latent_channels=C, latent_height=h, latent_width=w, context=2,
        frames_per_call=frames_per_call, n_actions=spec.n_actions, metadata_dim=M,
        token_dim=16, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
        attention_head_dim=2, norm_num_groups=4)
    folder = ModelFolder(root)
    folder.save_component("vae", vae, vae_cfg)
    folder.save_component("metadata", MetadataPredictor(meta_cfg), meta_cfg)
    folder.save_component("denoiser", Denoiser(den_cfg), den_cfg)
    folder.update(env_id=env_id, sampler={"steps": 2})
    return root


@pytest.fixture(scope="session")
def world_model_builder():
    """`build_tiny_world_model(root, env_id, frames_per_call, seed)` for tests."""
    return build_tiny_world_model


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained Breakout world-model folder (T = 1)."""
    return build_tiny_world_model(tmp_path_factory.mktemp("wm") / "model")
