"""The batched dream: make_vec, one model call per step, NEXT_STEP autoreset, per-env
truncation, seeds, and the multi-frame rule per sub-env."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import neuralgym  # noqa: F401  (registers the ids)
from neuralgym import make_real
from neuralgym.data import Dataset
from neuralgym.vector_env import NeuralRetroVectorEnv

ID = "NeuralBreakout-v0"


def test_make_vec_batches_the_dreams(dream_model_dir: Path, model_calls):
    envs = gym.make_vec(ID, num_envs=3, model=str(dream_model_dir), render_mode="rgb_array")
    assert isinstance(envs, NeuralRetroVectorEnv) and envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 27_000
    real = make_real(ID)
    assert envs.single_observation_space == real.observation_space
    assert envs.single_action_space == real.action_space
    assert envs.observation_space.shape == (3, 210, 160, 3)
    assert envs.action_space == gym.spaces.MultiDiscrete([4, 4, 4])
    calls = model_calls(envs)
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (3, 210, 160, 3) and obs.dtype == np.uint8
    obs, rewards, terminated, truncated, infos = envs.step(np.array([0, 1, 2]))
    assert calls == [3]  # one model call for the whole batch
    assert obs.shape == (3, 210, 160, 3) and rewards.shape == terminated.shape == (3,)
    assert not truncated.any()
    frames = envs.render()
    assert len(frames) == 3 and all((f == o).all() for f, o in zip(frames, obs, strict=True))

    # infos as SyncVectorEnv would give them for the real game
    sync = SyncVectorEnv([lambda: make_real(ID)] * 3)
    _, real_infos = sync.reset(seed=0)
    *_, real_step_infos = sync.step(np.array([0, 1, 2]))
    for ours, theirs in ((envs.reset(seed=0)[1], real_infos), (infos, real_step_infos)):
        assert set(ours) == set(theirs)
        for key in theirs:
            assert ours[key].dtype == theirs[key].dtype, key
            assert ours[key].shape == theirs[key].shape, key
    sync.close()
    real.close()

    with pytest.raises(ValueError, match="Discrete\\(4\\)"):
        envs.step(np.array([0, 9, 1]))
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        envs.step(np.array([0, 1]))
    fresh = gym.make_vec(ID, num_envs=2, model=str(dream_model_dir))
    with pytest.raises(RuntimeError, match="reset\\(\\) before step\\(\\)"):
        fresh.step(np.array([0, 0]))


def test_truncation_and_next_step_autoreset(dream_model_dir: Path):
    envs = gym.make_vec(ID, num_envs=3, model=str(dream_model_dir), max_episode_steps=2)
    assert envs.max_episode_steps == 2
    starts = envs.start_contexts.frames[:, -1]
    envs.reset(seed=1)
    acts = np.array([1, 2, 3])
    _, _, term, trunc, _ = envs.step(acts)
    assert not trunc.any() and not term.any()
    _, _, term, trunc, _ = envs.step(acts)
    assert trunc.all() and not term.any()  # each sub-env counted its 2 steps
    obs, rewards, term, trunc, infos = envs.step(acts)  # NEXT_STEP: this step resets them
    assert not trunc.any() and not term.any() and (rewards == 0).all()
    for o in obs:  # the first frame of a new dream: the last frame of a start context
        assert any((o == s).all() for s in starts)
    _, _, _, trunc, _ = envs.step(acts)
    assert not trunc.any()
    _, _, _, trunc, _ = envs.step(acts)
    assert trunc.all()


def test_termination_autoresets_only_that_sub_env(dream_model_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch, model_calls):
    envs = gym.make_vec(ID, num_envs=3, model=str(dream_model_dir))
    # the second of the sub-envs stepped in a call ends its episode
    game = dataclasses.replace(envs.game, terminated=lambda p, c: np.arange(len(c["lives"])) == 1)
    monkeypatch.setattr(envs, "game", game)
    calls = model_calls(envs)
    envs.reset(seed=2)
    envs._steps[:] = 5
    _, _, term, trunc, _ = envs.step(np.array([0, 0, 0]))
    assert term.tolist() == [False, True, False] and not trunc.any()
    obs, rewards, term, _, _ = envs.step(np.array([1, 1, 1]))
    # env 1 restarted (reward 0, not stepped: batch of 2); of the stepped 0 and 2, 2 ends
    assert calls == [3, 2]
    assert rewards[1] == 0 and term.tolist() == [False, False, True]
    assert envs._steps.tolist() == [7, 0, 7]
    assert any((obs[1] == s).all() for s in envs.start_contexts.frames[:, -1])


def test_seeds_and_equivalence_with_the_single_env(dream_model_dir: Path,
                                                   dream_multi_frame_dir: Path):
    actions = [[0, 1], [2, 2], [2, 3], [2, 3], [1, 1]]

    def vec_rollout(folder: Path, seed: int, n: int = 2) -> np.ndarray:
        envs = gym.make_vec(ID, num_envs=n, model=str(folder))
        out = [envs.reset(seed=seed)[0]]
        for a in actions:
            out.append(envs.step(np.array(a[:n]))[0])
        return np.stack(out)

    for folder in (dream_model_dir, dream_multi_frame_dir):
        a = vec_rollout(folder, 3)
        np.testing.assert_array_equal(a, vec_rollout(folder, 3))
        assert (a[1:] != vec_rollout(folder, 4)[1:]).any()
        # one sub-env is the single env: same seed, same actions, same frames
        env = gym.make(ID, model=str(folder))
        single = [env.reset(seed=3)[0]] + [env.step(a[0])[0] for a in actions]
        np.testing.assert_array_equal(vec_rollout(folder, 3, n=1)[:, 0], np.stack(single))


def test_multi_frame_per_sub_env(dream_multi_frame_dir: Path, model_calls):
    envs = gym.make_vec(ID, num_envs=3, model=str(dream_multi_frame_dir))
    assert envs.frames_per_call == 2
    calls = model_calls(envs)
    envs.reset(seed=0)
    for _ in range(4):  # every action repeats: one batched call per two steps
        envs.step(np.array([2, 2, 2]))
    assert calls == [3, 3]
    calls.clear()
    envs.step(np.array([2, 2, 2]))  # plans used up: all three generate
    envs.step(np.array([2, 0, 2]))  # only sub-env 1 changed its action
    assert calls == [3, 1]
    for d in envs._dreams.dreams:
        assert d.state.actions.shape[1] == d.state.latents.shape[1] - 1
    assert [d.state.actions[0, -1].item() for d in envs._dreams.dreams] == [2, 0, 2]


def test_reset_options_apply_to_every_sub_env(dream_model_dir: Path, breakout_dataset: Dataset):
    envs = gym.make_vec(ID, num_envs=2, model=str(dream_model_dir), max_episode_steps=1)
    ep = breakout_dataset.load(breakout_dataset.episodes[0])
    obs, infos = envs.reset(seed=0, options={"episode": ep, "step": 8})
    assert (obs == ep.frames[8]).all()
    np.testing.assert_array_equal(infos["metadata"], np.stack([ep.metadata[8]] * 2))
    envs.step(np.array([0, 0]))
    obs, *_ = envs.step(np.array([0, 0]))  # autoreset: back to the same context
    assert (obs == ep.frames[8]).all()
    with pytest.raises(ValueError, match="unknown keys"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        NeuralRetroVectorEnv(ID, num_envs=0, model=str(dream_model_dir))


def test_dreams_of_different_history_lengths_share_one_denoiser_call(dream_model_dir: Path,
                                                                      model_calls):
    envs = gym.make_vec(ID, num_envs=3, model=str(dream_model_dir))
    envs.reset(seed=0)
    for _ in range(3):
        envs.step(np.array([1, 1, 1]))
    dreams = envs._dreams
    ctx = envs.start_contexts
    dreams.start([1], ctx.frames[:1], ctx.metadata[:1], ctx.actions[:1])  # a fresh history
    lengths = [d.state.metadata.shape[1] for d in dreams.dreams]
    assert lengths[1] < lengths[0] == lengths[2]
    model = envs.model
    acts = torch.tensor([[2]])
    expected = [model.predict_metadata(d.state, acts)[0, 0].numpy() for d in dreams.dreams]
    calls = model_calls(envs)
    envs.step(np.array([2, 2, 2]))
    assert calls == [3]  # g_phi per history length, one denoiser/decoder call for all
    for d, m in zip(dreams.dreams, expected, strict=True):
        np.testing.assert_allclose(d.metadata, m, rtol=1e-5, atol=1e-5)
    assert [d.state.metadata.shape[1] for d in dreams.dreams] == [
        min(n + 1, model.history) for n in lengths]
