"""GymnasiumVectorToSB3: SB3's VecEnv conventions over Gymnasium vector envs (SameStep: exactly
DummyVecEnv; NextStep: one reset step per episode), and the batched dream seen as PPO sees the
real game."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv
from gymnasium.wrappers import FrameStackObservation, TimeLimit
from stable_baselines3.common.utils import check_for_correct_spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from neuralgym import make_real
from neuralgym.data import Dataset
from neuralgym.policies import preprocess_frame, wrap_ppo_observation
from neuralgym.sb3_vec_env import GymnasiumVectorToSB3, ppo_vec_env, split_infos
from neuralgym.start_contexts import contexts_from_dataset, save_start_contexts

ID = "NeuralBreakout-v0"


class Counter(gym.Env):
    """Observation: the step count as a (2, 2) frame (100 after a reset); reward action - 1;
    terminates after `length` steps."""

    def __init__(self, length: int):
        self.length = length
        self.observation_space = gym.spaces.Box(0, 255, (2, 2), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full((2, 2), 100, np.uint8), {"t": 0}

    def step(self, action):
        self.t += 1
        return (np.full((2, 2), self.t, np.uint8), float(action) - 1, self.t >= self.length,
                False, {"t": self.t})


def counters():
    """Sub-envs: one terminating after 3 steps, one truncated by a time limit after 4."""
    return [lambda: Counter(3), lambda: TimeLimit(Counter(10), 4)]


def reference():
    return DummyVecEnv([lambda f=f: FrameStackObservation(f(), 2, padding_type="reset")
                        for f in counters()])


ACTIONS = [np.array([2, 0]), np.array([1, 2]), np.array([0, 0]), np.array([2, 1]),
           np.array([2, 2]), np.array([0, 1]), np.array([1, 1])]


def test_same_step_is_dummy_vec_env():
    env = GymnasiumVectorToSB3(SyncVectorEnv(counters(), autoreset_mode="SameStep"),
                               frame_stack=2)
    ref = reference()
    assert env.observation_space == ref.observation_space
    assert env.action_space == ref.action_space
    assert (env.reset() == ref.reset()).all()
    for actions in ACTIONS:
        obs, rewards, dones, infos = env.step(actions)
        r_obs, r_rewards, r_dones, r_infos = ref.step(actions)
        assert obs.dtype == np.uint8 and (obs == r_obs).all()
        assert rewards.dtype == np.float32 and (rewards == r_rewards).all()
        assert dones.dtype == bool and (dones == r_dones).all()
        for info, r_info in zip(infos, r_infos, strict=True):
            assert info.pop("episode", None) is not None or "terminal_observation" not in info
            assert info.keys() == r_info.keys()
            for k in info:
                assert np.array_equal(info[k], r_info[k]), k
    assert env.reset_infos == ref.reset_infos


def test_next_step_adds_one_reset_step_per_episode():
    env = GymnasiumVectorToSB3(SyncVectorEnv(counters()), frame_stack=2, clip_rewards=True)
    assert env.mode == gym.vector.AutoresetMode.NEXT_STEP
    env.reset()
    seen = []
    for _ in range(3):  # sub-env 0 terminates at its 3rd step
        obs, rewards, dones, infos = env.step(np.array([2, 2]))
        seen.append(obs.copy())
    assert dones.tolist() == [True, False] and rewards.tolist() == [1.0, 1.0]
    info = infos[0]
    assert info["TimeLimit.truncated"] is False
    assert (info["terminal_observation"][:, 0, 0] == [2, 3]).all()
    assert info["episode"]["r"] == 3.0 and info["episode"]["l"] == 3  # the game's returns
    assert (obs[0] == info["terminal_observation"]).all()  # until the reset step comes
    obs, rewards, dones, infos = env.step(np.array([0, 2]))  # 0's action is ignored
    assert (obs[0] == 100).all() and rewards[0] == 0 and not dones[0]
    assert infos[0]["t"] == 0 and env.reset_infos[0] == {"t": 0}
    assert dones[1] and infos[1]["TimeLimit.truncated"] is True  # the time limit of 4
    assert infos[1]["episode"] == {"r": 4.0, "l": 4, "t": infos[1]["episode"]["t"]}
    obs, rewards, dones, infos = env.step(np.array([0, 2]))
    assert (obs[0, :, 0, 0] == [100, 1]).all() and rewards[0] == -1 and not dones[0]
    assert (obs[1] == 100).all() and rewards[1] == 0  # 1's reset step
    # episode stats count the real steps only: 3 more steps end episode 2 with length 3
    for _ in range(2):
        obs, rewards, dones, infos = env.step(np.array([1, 1]))
    assert dones[0] and infos[0]["episode"]["l"] == 3 and infos[0]["episode"]["r"] == -1.0


def test_batch_preprocess_serves_every_step():
    """With batch_preprocess the adapter preprocesses each step's observations in one call and
    serves what the one-frame preprocess would."""
    space = gym.spaces.Box(0, 255, (2, 2), np.uint8)

    def plus_one(o):
        return (np.asarray(o) + 1).astype(np.uint8)

    calls = []

    def batched(obs):
        calls.append(len(obs))
        return plus_one(obs)

    one = GymnasiumVectorToSB3(SyncVectorEnv(counters()), plus_one, space, 2)
    both = GymnasiumVectorToSB3(SyncVectorEnv(counters()), plus_one, space, 2,
                                batch_preprocess=batched)
    assert (one.reset() == both.reset()).all() and calls == [2]
    for a in ACTIONS:
        o1, r1, d1, i1 = one.step(a)
        o2, r2, d2, i2 = both.step(a)
        assert (o1 == o2).all() and (r1 == r2).all() and (d1 == d2).all()
        assert [i.get("terminal_observation") is None for i in i1] == \
            [i.get("terminal_observation") is None for i in i2]
    assert calls == [2] * (1 + len(ACTIONS))
    with pytest.raises(ValueError, match="needs preprocess"):
        GymnasiumVectorToSB3(SyncVectorEnv(counters()), batch_preprocess=batched)


@pytest.mark.parametrize("device,batched", [("cpu", False), ("cuda", True), ("cuda:1", True)])
def test_ppo_vec_env_batches_on_a_gpu_dream(device: str, batched: bool):
    """ppo_vec_env preprocesses the batch on the device of a vector env's model when that is
    a GPU, and frame by frame otherwise."""
    import torch

    venv = SyncVectorEnv([lambda: gym.make(ID)])
    venv.model = SimpleNamespace(device=torch.device(device))
    env = ppo_vec_env(venv)
    assert (env.batch_preprocess is not None) == batched
    if batched:
        assert env.batch_preprocess.keywords["device"] == torch.device(device)
    assert ppo_vec_env(SyncVectorEnv([lambda: gym.make(ID)])).batch_preprocess is None
    venv.close()


def test_split_infos():
    infos = {"a": np.array([1.0, 2.0]), "_a": np.array([True, False]),
             "m": np.zeros((2, 3), np.float32), "_m": np.array([True, True]),
             "final_info": {"x": np.array([0, 7]), "_x": np.array([False, True])},
             "_final_info": np.array([False, True])}
    out = split_infos(infos, 2)
    assert out[0] == {"a": 1.0, "m": out[0]["m"]} and out[0]["m"].shape == (3,)
    assert out[1]["final_info"] == {"x": 7} and "a" not in out[1]


def test_refuses_what_it_cannot_serve():
    with pytest.raises(ValueError, match="Disabled"):
        GymnasiumVectorToSB3(SyncVectorEnv(counters(), autoreset_mode="Disabled"))
    with pytest.raises(TypeError, match="VectorEnv"):
        GymnasiumVectorToSB3(Counter(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frame_space"):
        GymnasiumVectorToSB3(SyncVectorEnv(counters()), preprocess=preprocess_frame)


# -- the dream ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tiny_world_model: Path, breakout_dataset: Dataset,
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("sb3") / "wm"
    shutil.copytree(tiny_world_model, dst)
    save_start_contexts(dst, contexts_from_dataset(breakout_dataset, 2, 6, "all"))
    return dst


def test_dream_as_ppo_sees_the_real_game(model_dir: Path):
    """Spaces of the real-game training env, preprocess_frame of the dream's frames, the last
    4 stacked, and an episode cut by max_episode_steps with its terminal observation."""
    real = wrap_ppo_observation(make_real(ID))
    raw = gym.make_vec(ID, num_envs=2, model=str(model_dir), max_episode_steps=3)
    env = ppo_vec_env(gym.make_vec(ID, num_envs=2, model=str(model_dir), max_episode_steps=3))
    check_for_correct_spaces(env, real.observation_space, real.action_space)
    real.close()
    assert env.num_envs == 2 and env.render_mode is None

    env.seed(5)
    obs = env.reset()
    frames, _ = raw.reset(seed=5)  # the same seed gives the same dreams
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    for i in range(2):
        assert (obs[i] == preprocess_frame(frames[i])[None]).all()  # the stack: first frame
    assert set(env.reset_infos[0]) >= {"ball_x", "lives", "metadata"}
    for t in range(3):
        actions = np.array([t % 4, 3 - t % 4])
        prev = obs
        obs, rewards, dones, infos = env.step(actions)
        frames, r, term, trunc, _ = raw.step(actions)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        assert rewards.shape == (2,) and rewards.dtype == np.float32 and dones.dtype == bool
        assert (obs[:, :3] == prev[:, 1:]).all()
        assert all((obs[i, 3] == preprocess_frame(frames[i])).all() for i in range(2))
        assert (dones == (term | trunc)).all()
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)  # cut at 3 steps
    for i in range(2):
        term_obs = infos[i]["terminal_observation"]
        assert term_obs.shape == (4, 84, 84) and term_obs.dtype == np.uint8
        assert (term_obs == obs[i]).all() and infos[i]["episode"]["l"] == 3
    obs, rewards, dones, infos = env.step(np.array([1, 1]))  # the reset step: new dreams
    assert not dones.any() and (rewards == 0).all()
    assert (obs == obs[:, :1]).all()  # a fresh stack of one first frame
    env.close()
    raw.close()


def test_sb3_ppo_learns_on_the_batched_dream(model_dir: Path):
    from stable_baselines3 import PPO

    env = ppo_vec_env(gym.make_vec(ID, num_envs=2, model=str(model_dir), denoising_steps=1,
                                   max_episode_steps=5))
    agent = PPO("CnnPolicy", env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    agent.learn(32)
    assert agent.num_timesteps == 32
    assert len(agent.ep_info_buffer) >= 4 and all(e["l"] <= 5 for e in agent.ep_info_buffer)
    env.close()
