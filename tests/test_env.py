"""The dream env: Gymnasium's checks, the real env's spaces, registration, seeds, multi-frame
mode, reset options, clear errors, and an SB3 PPO run on it."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import neuralgym
from neuralgym import get_spec, make_real
from neuralgym.data import Dataset
from neuralgym.env import ModelMismatchError, NeuralRetroEnv
from neuralgym.model_folder import ModelFolderError
from neuralgym.predictors import NoModelError
from neuralgym.start_contexts import (
    StartContextsError,
    start_contexts_path,
)

ID = "NeuralBreakout-v0"


def test_check_env_passes(dream_model_dir: Path, dream_multi_frame_dir: Path):
    for folder in (dream_model_dir, dream_multi_frame_dir):
        env = gym.make(ID, model=str(folder))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
        assert not [str(w.message) for w in caught if "gymnasium" in w.filename], caught
        env.close()


def test_spaces_and_info_keys_match_the_real_env(dream_model_dir: Path):
    dream, real = gym.make(ID, model=str(dream_model_dir)), make_real(ID)
    assert dream.observation_space == real.observation_space
    assert dream.action_space == real.action_space
    (d_obs, d_info), (r_obs, r_info) = dream.reset(seed=0), real.reset(seed=0)
    assert d_obs.shape == r_obs.shape and d_obs.dtype == r_obs.dtype
    assert list(d_info) == list(r_info) == list(get_spec(ID).info_keys)
    d_step, r_step = dream.step(1), real.step(1)
    assert list(d_step[4]) == list(r_step[4])
    for d, r in zip(d_step, r_step, strict=True):
        assert type(d) is type(r)
    assert d_step[4]["metadata"].dtype == r_step[4]["metadata"].dtype == np.float32
    real.close()


def test_registration(dream_model_dir: Path):
    for game in ("Sonic", "Airstriker", "Breakout", "Pong", "DemonAttack"):
        spec = gym.spec(f"Neural{game}-v0")
        assert spec.entry_point == "neuralgym.env:NeuralRetroEnv"
        assert spec.vector_entry_point == "neuralgym.vector_env:NeuralRetroVectorEnv"
        assert spec.max_episode_steps == get_spec(spec.id).max_episode_steps
        assert spec.kwargs["model"] is None and spec.kwargs["device"] == "cpu"
    env = gym.make(ID, model=str(dream_model_dir))
    assert isinstance(env.unwrapped, NeuralRetroEnv)
    limits, e = [], env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit):
            limits.append(e._max_episode_steps)
        e = e.env
    assert limits == [get_spec(ID).max_episode_steps] == [27_000]
    env.close()
    # registering keeps `import neuralgym` light: no torch, no model
    code = "import sys, neuralgym; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert neuralgym.__all__ == ["GAMES", "GameSpec", "RealGameEnv", "RomNotFoundError",
                                 "get_spec", "make_real"]


def rollout(env: gym.Env, seed: int, actions: list[int]) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for a in actions:
        frames.append(env.step(a)[0])
    return np.stack(frames)


def test_same_seed_same_frames(dream_model_dir: Path, breakout_dataset: Dataset):
    env = gym.make(ID, model=str(dream_model_dir), denoising_steps=1)
    assert env.unwrapped.model.steps == 1
    actions = [1, 2, 2, 3, 0, 1]
    a = rollout(env, 7, actions)
    np.testing.assert_array_equal(a, rollout(env, 7, actions))
    other = gym.make(ID, model=str(dream_model_dir), denoising_steps=1)
    np.testing.assert_array_equal(a, rollout(other, 7, actions))  # a fresh env too
    assert (a[1:] != rollout(env, 8, actions)[1:]).any()  # the seed matters
    # reset() without a seed continues the generator: a different dream from the same start
    start = {"episode": breakout_dataset.load(breakout_dataset.episodes[0]), "step": 5}
    env.reset(seed=7, options=start)
    f1 = env.step(0)[0]
    env.reset(options=start)
    assert (env.step(0)[0] != f1).any()


def test_bf16_weights(dream_model_dir: Path):
    """bf16_weights=True holds the backbone in bf16 (single and vector env); the dream still
    serves uint8 frames of the game's shape, close to the float32 model's."""
    ref = gym.make(ID, model=str(dream_model_dir), denoising_steps=1)
    env = gym.make(ID, model=str(dream_model_dir), denoising_steps=1, bf16_weights=True)
    model = env.unwrapped.model
    assert model.bf16_weights and not ref.unwrapped.model.bf16_weights
    assert next(model.denoiser.backbone.parameters()).dtype == torch.bfloat16
    a, b = rollout(ref, 3, [1, 2, 3]), rollout(env, 3, [1, 2, 3])
    assert b.dtype == np.uint8 and b.shape == a.shape
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 8
    venv = gym.make_vec(ID, num_envs=2, model=str(dream_model_dir), denoising_steps=1,
                        bf16_weights=True)
    assert venv.unwrapped.model.bf16_weights
    venv.reset(seed=0)
    obs, *_ = venv.step(np.array([1, 2]))
    assert obs.shape == (2, *get_spec(ID).obs_shape) and obs.dtype == np.uint8


def test_sample_metadata_is_a_make_argument(dream_model_dir: Path):
    """gym.make(..., sample_metadata=True) (and make_vec) has g_phi's scores and lives drawn
    from its distributions (WorldModel.sample_metadata); off by default."""
    env = gym.make(ID, model=str(dream_model_dir), denoising_steps=1)
    assert env.unwrapped.model.sample_metadata is False
    env = gym.make(ID, model=str(dream_model_dir), denoising_steps=1, sample_metadata=True)
    assert env.unwrapped.model.sample_metadata is True
    venv = gym.make_vec(ID, num_envs=2, model=str(dream_model_dir), denoising_steps=1,
                        sample_metadata=True)
    assert venv.unwrapped.model.sample_metadata is True
    venv.reset(seed=0)
    obs, reward, *_ = venv.step(np.array([1, 2]))
    assert obs.shape == (2, *get_spec(ID).obs_shape) and reward.shape == (2,)


def test_reset_options(dream_model_dir: Path, breakout_dataset: Dataset):
    env = gym.make(ID, model=str(dream_model_dir)).unwrapped
    ep = breakout_dataset.load(breakout_dataset.episodes[0])
    t = 10
    # a recorded episode (folder or Episode) and a step: starts from the frames up to it
    for source in (breakout_dataset.root / "episodes" / breakout_dataset.episodes[0].name, ep):
        obs, info = env.reset(seed=0, options={"episode": source, "step": t})
        np.testing.assert_array_equal(obs, ep.frames[t])
        np.testing.assert_array_equal(info["metadata"], ep.metadata[t])
        state = env._dreams.dreams[0].state
        assert state.latents.shape[1] == min(t + 1, env.model.history)
        np.testing.assert_array_equal(state.actions[0].numpy(),
                                      ep.actions[t - state.actions.shape[1] : t])
    # an Episode recorded without frames: a clear error that says which
    bare = dataclasses.replace(ep, frames=np.zeros((len(ep) + 1, 0, 0, 3), np.uint8))
    with pytest.raises(ValueError, match=r"episode passed in options\['episode'\] was "
                                         "recorded without frames"):
        env.reset(seed=0, options={"episode": bare, "step": t})
    # explicit frames, metadata and actions
    opts = {"frames": np.array(ep.frames[3:6]), "metadata": np.array(ep.metadata[3:6]),
            "actions": np.array(ep.actions[3:5])}
    obs, info = env.reset(options=opts)
    np.testing.assert_array_equal(obs, ep.frames[5])
    assert info["score"] == float(ep.metadata[5][4])
    obs, *_ = env.step(0)
    assert obs.shape == (210, 160, 3)
    # no options (or {}): one of the shipped start contexts
    contexts = env.start_contexts
    for options in (None, {}):
        obs, _ = env.reset(seed=1, options=options)
        assert any((obs == f).all() for f in contexts.frames[:, -1])


def test_render(dream_model_dir: Path):
    env = gym.make(ID, model=str(dream_model_dir), render_mode="rgb_array")
    assert env.unwrapped.render() is None  # nothing to show before reset
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)
    obs, *_ = env.step(2)
    np.testing.assert_array_equal(env.render(), obs)
    assert gym.make(ID, model=str(dream_model_dir)).unwrapped.render() is None
    with pytest.raises(ValueError, match="render_mode"):
        NeuralRetroEnv(ID, model=str(dream_model_dir), render_mode="human")


def test_multi_frame_serves_frames_and_regenerates(dream_multi_frame_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch, model_calls):
    env = gym.make(ID, model=str(dream_multi_frame_dir)).unwrapped
    assert env.frames_per_call == 2
    calls = model_calls(env)
    env.reset(seed=0)
    for _ in range(8):  # the action repeats: one call per two steps
        env.step(2)
    assert len(calls) == 4
    calls.clear()
    for a in [0, 1, 0, 1]:  # a new action every step: one call per step
        env.step(a)
    assert len(calls) == 4
    calls.clear()

    # a changed action throws the rest of the plan away; only served frames enter the history
    dream = env._dreams.dreams[0]
    env.step(3)  # a new plan (3, 3); serves its first frame
    plan = dream.plan
    assert len(calls) == 1 and plan.served == 1
    torch.testing.assert_close(dream.state.latents[:, -1], plan.latents[:, 0], rtol=0, atol=0)
    env.step(0)  # differs from the plan: generate from the state after the served frame
    assert len(calls) == 2 and dream.plan is not plan
    assert dream.state.actions[0, -2:].tolist() == [3, 0]
    torch.testing.assert_close(dream.state.latents[:, -2], plan.latents[:, 0], rtol=0, atol=0)
    assert dream.state.latents.shape[1] <= env.model.history
    assert dream.state.actions.shape[1] == dream.state.latents.shape[1] - 1

    # the same seed and actions give the same frames in multi-frame mode too
    actions = [2, 2, 2, 1, 1, 0, 3, 3, 3]
    np.testing.assert_array_equal(rollout(env, 4, actions), rollout(env, 4, actions))
    # frames_per_call must be the model's
    env2 = NeuralRetroEnv(ID, model=str(dream_multi_frame_dir), frames_per_call=2)
    assert env2.frames_per_call == 2
    with pytest.raises(ModelMismatchError, match="2 frame\\(s\\) per call"):
        gym.make(ID, model=str(dream_multi_frame_dir), frames_per_call=1)


def test_bad_input_is_a_clear_error(dream_model_dir: Path, breakout_dataset: Dataset):
    for make in (gym.make, lambda *a, **k: gym.make_vec(*a, num_envs=2, **k)):
        with pytest.raises(ValueError, match="cuda_graphs=True needs device='cuda'"):
            make(ID, model=str(dream_model_dir), cuda_graphs=True)
    env = gym.make(ID, model=str(dream_model_dir)).unwrapped
    with pytest.raises(RuntimeError, match="reset\\(\\) before step\\(\\)"):
        env.step(0)
    env.reset(seed=0)
    for bad in (4, -1, 1.5, "x", None, [0, 1]):
        with pytest.raises(ValueError, match="Discrete\\(4\\): 0=NOOP, 1=FIRE"):
            env.step(bad)
    env.step(np.int64(3))  # numpy ints are fine
    ep = breakout_dataset.load(breakout_dataset.episodes[0])
    good = {"frames": np.array(ep.frames[:3]), "metadata": np.array(ep.metadata[:3]),
            "actions": np.array(ep.actions[:2])}
    bad_options = [
        ({"frames": good["frames"]}, "missing keys \\['actions', 'metadata'\\]"),
        ({**good, "step": 3}, "mix the two forms"),
        ({**good, "seed": 3}, "unknown keys \\['seed'\\]"),
        ({**good, "frames": good["frames"].astype(np.float32)}, "uint8"),
        ({**good, "frames": good["frames"][:, :100]}, "\\(L, 210, 160, 3\\) uint8"),
        ({"frames": good["frames"][:1], "metadata": good["metadata"][:1],
          "actions": good["actions"][:0]}, "at least 2 frames"),
        ({**good, "metadata": good["metadata"][:, :5]}, "\\(3, 6\\) float"),
        ({**good, "actions": good["actions"][:1]}, "\\(2,\\) int"),
        ({**good, "actions": good["actions"].astype(np.float32)}, "\\(2,\\) int"),
        ({**good, "actions": np.array([0, 7])}, "0..3"),
        ({"episode": ep, "step": 0}, "step 0 is outside 1.."),
        ({"episode": ep, "step": "3"}, "'step' must be an int"),
        ({"episode": 42, "step": 3}, "episode folder or an Episode"),
    ]
    for options, match in bad_options:
        with pytest.raises(ValueError, match=match):
            env.reset(options=options)
    with pytest.raises(ValueError, match="expected \\{\"frames\": \\(L, 210, 160, 3\\) uint8"):
        env.reset(options={"frame": good["frames"]})


def test_model_folder_errors(dream_model_dir: Path, tiny_world_model: Path, tmp_path: Path,
                             world_model_builder):
    with pytest.raises(NoModelError, match="does not exist.*make_start_contexts"):
        gym.make(ID, model=str(tmp_path / "nope"))
    # the shipped model: absent for now, with how to train one (Sonic: import the ROM first)
    with pytest.raises(NoModelError, match="stable_retro.import.*agents/record.py --env "
                                           "NeuralSonic-v0.*neuralgym/shipped/sonic"):
        gym.make("NeuralSonic-v0")
    # a model of another game
    with pytest.raises(ModelMismatchError, match="a world model of NeuralBreakout-v0, not "
                                                 "NeuralPong-v0"):
        gym.make("NeuralPong-v0", model=str(dream_model_dir))
    pong = world_model_builder(tmp_path / "pong", env_id="NeuralPong-v0")
    with pytest.raises(ModelMismatchError, match="NeuralPong-v0, not NeuralBreakout-v0"):
        gym.make(ID, model=str(pong))
    # corrupt or incomplete folders
    broken = tmp_path / "broken"
    shutil.copytree(dream_model_dir, broken)
    (broken / "denoiser.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelFolderError, match="denoiser.safetensors is corrupt"):
        gym.make(ID, model=str(broken))
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="config.json is corrupt"):
        gym.make(ID, model=str(broken))
    (broken / "config.json").unlink()
    with pytest.raises(ModelFolderError, match="no config.json"):
        gym.make(ID, model=str(broken))
    # start contexts: corrupt, missing, or of another shape
    bad_sc = tmp_path / "bad-sc"
    shutil.copytree(dream_model_dir, bad_sc)
    start_contexts_path(bad_sc).write_bytes(start_contexts_path(bad_sc).read_bytes()[:500])
    with pytest.raises(StartContextsError, match="corrupt or truncated"):
        gym.make(ID, model=str(bad_sc))
    env = gym.make(ID, model=str(tiny_world_model))  # no start contexts: options still work
    with pytest.raises(StartContextsError, match="start_contexts.safetensors is missing.*"
                                                 "make_start_contexts.py"):
        env.reset(seed=0)
    # other arguments
    with pytest.raises(ValueError, match="denoising_steps must be a positive int"):
        gym.make(ID, model=str(dream_model_dir), denoising_steps=0)
    with pytest.raises(ValueError, match="denoising_steps must be in 1..1000"):
        gym.make(ID, model=str(dream_model_dir), denoising_steps=5000)
    with pytest.raises(ValueError, match="device"):
        gym.make(ID, model=str(dream_model_dir), device="tpu")


def test_sb3_ppo_learns_on_the_dream(dream_model_dir: Path):
    from stable_baselines3 import PPO

    env = gym.make(ID, model=str(dream_model_dir), denoising_steps=1)
    agent = PPO("CnnPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    agent.learn(256)
    assert agent.num_timesteps == 256
    env.close()


def test_the_shipped_breakout_model_and_its_decoders():
    env = gym.make(ID, denoising_steps=1)  # no model=: the shipped one
    assert env.unwrapped.model.decoder_kind == "vae"  # its folder's choice (decode_with)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.shape == (210, 160, 3) and obs.dtype == np.uint8
    fast = gym.make(ID, denoising_steps=1, decoder="fast")
    assert fast.unwrapped.model.decoder_kind == "fast"
    fast.reset(seed=0)
    assert fast.step(1)[0].shape == (210, 160, 3)
    with pytest.raises(ValueError, match="decoder must be 'auto', 'vae' or 'fast'"):
        gym.make(ID, decoder="sharp")


@pytest.mark.parametrize("env_id", ["NeuralPong-v0", "NeuralAirstriker-v0"])
def test_the_shipped_pong_and_airstriker_models(env_id: str):
    """No model=: the folder shipped for the game, with the real game's spaces and info keys,
    decoding with its fast decoder (its folder's choice: sharper than its VAE's own)."""
    from neuralgym import make_real

    env = gym.make(env_id, denoising_steps=1)
    real = make_real(env_id)
    assert env.observation_space == real.observation_space
    assert env.action_space == real.action_space
    assert env.unwrapped.model.decoder_kind == "fast"
    obs, info = env.reset(seed=0)
    _, real_info = real.reset(seed=0)
    assert obs.shape == real.observation_space.shape and obs.dtype == np.uint8
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs in env.observation_space and np.isfinite(reward)
    assert set(real_info) <= set(info)
    real.close()
    env.close()


def test_dream_env_with_a_g_phi_that_reads_no_frames(dream_model_dir: Path, tmp_path: Path):
    """A folder whose g_phi reads no latent frames (`without_latents`) runs as a dream env:
    Gymnasium's checks pass, every step's info has the game's variables, and the same
    actions from the same seed give the same episode."""
    from neuralgym.model_folder import ModelFolder
    from neuralgym.models.metadata import MetadataConfig, MetadataPredictor, without_latents

    dst = tmp_path / "wm"
    shutil.copytree(dream_model_dir, dst)
    folder = ModelFolder(dst)
    model = folder.load_component(
        "metadata", MetadataPredictor(folder.component_config("metadata", MetadataConfig)))
    plain = without_latents(model)
    folder.save_component("metadata", plain, plain.config)
    env = gym.make(ID, model=str(dst))
    check_env(env.unwrapped)
    runs = []
    for _ in range(2):
        _, info = env.reset(seed=3)
        names = get_spec(ID).metadata_names
        infos = [[float(info[k]) for k in names]]
        for a in (0, 1, 2, 3, 1):
            obs, _, _, _, info = env.step(a)
            assert env.observation_space.contains(obs)
            infos.append([float(info[k]) for k in names])
        runs.append(infos)
    assert runs[0] == runs[1]
    env.close()
