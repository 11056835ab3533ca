"""The real envs: Gymnasium API, rules against the raw emulators, emulator state, errors.

stable-retro allows one emulator per process, so every test closes its retro env (and the
side-by-side Genesis test runs the two envs one after the other).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import stable_retro
from ale_py.env import AtariEnv
from gymnasium.utils.env_checker import check_env

from neuralgym import GAMES, RealGameEnv, RomNotFoundError, get_spec, make_real
from neuralgym.games import UnknownEnvError

ALL_IDS = list(GAMES)
ATARI_IDS = ["NeuralBreakout-v0", "NeuralPong-v0", "NeuralDemonAttack-v0"]
STATE_IDS = ["NeuralBreakout-v0", "NeuralAirstriker-v0"]


@contextmanager
def real(env_id: str, **kwargs: Any) -> Iterator[gym.Env]:
    """make_real, skipping the test (with the error's message) where the ROM is absent."""
    try:
        env = make_real(env_id, **kwargs)
    except RomNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield env
    finally:
        env.close()


def digest(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


def rollout(env: gym.Env, actions: list[int], seed: int) -> tuple[list[Any], np.ndarray]:
    """Frames (as digests), rewards and ends, and metadata of reset + the given actions."""
    obs, info = env.reset(seed=seed)
    frames: list[Any] = [digest(obs)]
    metas = [info["metadata"]]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        frames.append((digest(obs), reward, terminated, truncated))
        metas.append(info["metadata"])
    return frames, np.stack(metas)


# -- Gymnasium API ---------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env(env_id: str) -> None:
    with real(env_id) as env:
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_spaces_info_and_time_limit(env_id: str) -> None:
    spec = get_spec(env_id)
    M = len(spec.metadata)
    with real(env_id) as env:
        assert isinstance(env, gym.wrappers.TimeLimit)
        assert env._max_episode_steps == spec.max_episode_steps
        assert isinstance(env.unwrapped, RealGameEnv) and env.unwrapped.game is spec
        assert env.observation_space == gym.spaces.Box(0, 255, spec.obs_shape, np.uint8)
        assert env.action_space == gym.spaces.Discrete(spec.n_actions)

        def check(obs: np.ndarray, info: dict[str, Any]) -> None:
            assert obs.dtype == np.uint8 and obs.shape == spec.obs_shape
            assert tuple(info) == spec.info_keys
            meta = info["metadata"]
            assert isinstance(meta, np.ndarray) and meta.dtype == np.float32
            assert meta.shape == (M,)
            for i, name in enumerate(spec.metadata_names):
                assert isinstance(info[name], float) and info[name] == meta[i]

        obs, info = env.reset(seed=0)
        check(obs, info)
        prev = info["metadata"]
        rng = np.random.default_rng(0)
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(spec.n_actions)))
            check(obs, info)
            assert isinstance(reward, float) and reward == spec.rewards(prev, info["metadata"])
            assert terminated is bool(spec.terminations(prev, info["metadata"]))
            assert truncated is False
            prev = info["metadata"]


def test_render() -> None:
    with real("NeuralBreakout-v0", render_mode="rgb_array") as env:
        assert env.render() is None
        obs, _ = env.reset(seed=0)
        np.testing.assert_array_equal(env.render(), obs)
    with pytest.raises(ValueError, match="render_mode"):
        make_real("NeuralBreakout-v0", render_mode="human")


# -- rules against the emulators -------------------------------------------------------------


@pytest.mark.parametrize("env_id", ATARI_IDS)
def test_atari_rules_match_ale(env_id: str) -> None:
    """Side by side with a raw ALE env: same frames, same reward, same game over."""
    spec = get_spec(env_id)
    raw = AtariEnv(game=spec.game, obs_type="rgb", frameskip=4, repeat_action_probability=0.0,
                   full_action_space=False)
    with real(env_id) as env:
        obs, _ = env.reset(seed=0)
        raw_obs, _ = raw.reset(seed=0)
        np.testing.assert_array_equal(obs, raw_obs)
        rng = np.random.default_rng(0)
        total, raw_done, steps = 0.0, False, 0
        while not raw_done and steps < 6_000:
            a = int(rng.integers(spec.n_actions))
            obs, reward, terminated, truncated, _ = env.step(a)
            raw_obs, raw_reward, raw_done, raw_truncated, _ = raw.step(a)
            steps += 1
            assert reward == raw_reward, f"step {steps}: reward {reward} != ALE {raw_reward}"
            assert terminated == raw_done, f"step {steps}: terminated {terminated} != {raw_done}"
            assert not truncated and not raw_truncated
            if not np.array_equal(obs, raw_obs):
                pytest.fail(f"{env_id} step {steps}: frame differs from the ALE's")
            total += reward
    raw.close()
    # the termination rule was exercised (random play reaches game over in all three)
    assert raw_done, f"{env_id}: no game over in {steps} steps"
    if env_id == "NeuralPong-v0":
        assert total < 0  # random play loses Pong: the -1 points were counted
    else:
        assert total > 0  # some points were scored and counted


def test_airstriker_rules_match_stable_retro() -> None:
    """make_real vs a raw stable-retro env fed the same button combos for 4 frames a step."""
    spec = get_spec("NeuralAirstriker-v0")
    rng = np.random.default_rng(0)
    actions: list[int] = []
    rewards: list[float] = []
    terms: list[bool] = []
    frames: list[str] = []
    with real(spec.env_id) as env:
        env.reset(seed=0)
        while len(actions) < 3_000:
            a = int(rng.integers(spec.n_actions))
            obs, reward, terminated, truncated, _ = env.step(a)
            actions.append(a)
            rewards.append(reward)
            terms.append(terminated)
            frames.append(digest(obs))
            assert not truncated
            if terminated:
                break
    assert terms[-1], "random play did not reach game over"
    assert sum(rewards) > 0

    raw = stable_retro.make(spec.game, state="Level1",
                            use_restricted_actions=stable_retro.Actions.ALL, render_mode=None)
    try:
        raw.reset(seed=0)
        for t, a in enumerate(actions):
            combo = np.zeros(len(raw.buttons), np.int8)
            for b in spec.buttons[a]:
                combo[raw.buttons.index(b)] = 1
            raw_reward, raw_done = 0.0, False
            for _ in range(4):
                raw_obs, r, term, trunc, _ = raw.step(combo)
                raw_reward += float(r)
                raw_done = raw_done or bool(term or trunc)
            assert rewards[t] == raw_reward, f"step {t}: reward {rewards[t]} != {raw_reward}"
            assert terms[t] == raw_done, f"step {t}: terminated {terms[t]} != {raw_done}"
            assert frames[t] == digest(raw_obs), f"step {t}: frame differs"
    finally:
        raw.close()


def test_airstriker_player_x_follows_the_ship() -> None:
    spec = get_spec("NeuralAirstriker-v0")
    right, left = spec.action_names.index("RIGHT"), spec.action_names.index("LEFT")
    with real(spec.env_id) as env:
        _, info = env.reset(seed=0)
        x0 = info["player_x"]
        for _ in range(15):
            _, _, _, _, info = env.step(right)
        x_right = info["player_x"]
        for _ in range(15):
            _, _, _, _, info = env.step(left)
        x_left = info["player_x"]
    assert x_right > x0
    assert x_left < x_right


def test_demon_attack_hit_timer_marks_the_hit_flash() -> None:
    """DemonAttack's hit_timer (RAM 25) is 0 in play, jumps to 60-63 when the player is hit
    (63: on the step's last frame), counts down 4 a step to 0, and the screen flashes (a
    frame change of over 10,000 MSE) the step it jumps, or the next where it jumps to 63."""
    spec = get_spec("NeuralDemonAttack-v0")
    rng = np.random.default_rng(0)
    hits, action = 0, 0
    with real(spec.env_id) as env:
        obs, info = env.reset(seed=0)
        timers, changes = [info["hit_timer"]], [0.0]
        for _ in range(1500):
            if rng.random() < 0.25:
                action = int(rng.integers(spec.n_actions))
            new, _, terminated, truncated, info = env.step(action)
            timers.append(info["hit_timer"])
            changes.append(float(((new.astype(np.float32) - obs) ** 2).mean()))
            obs = new
            if terminated or truncated:
                break
    timers_a = np.asarray(timers)
    for t in np.flatnonzero((timers_a[1:] > 0) & (timers_a[:-1] == 0)) + 1:
        hits += 1
        assert 60 <= timers_a[t] <= 63
        run = timers_a[t:t + 16]
        assert np.all(np.diff(run[run > 0]) == -4)
        flash = t + 1 if timers_a[t] == 63 else t
        assert changes[flash] > 10_000 and changes[flash - 1] < 10_000
    assert hits >= 2  # random play is hit within 1,500 steps


def test_demon_attack_bullet_dx_finds_the_enemy_shots_on_the_screen() -> None:
    """DemonAttack's bullet_dx0..2 (the enemy shot nearest the player's centre in each of the
    three 8-line bands above its feet) point at the shots' pixels in the real game's frames:
    the player's centre is 3 columns right of its leftmost pixel (the position decode), and
    the column centre + dx holds a shot's colour within the band's 8 lines (at most a few
    misses: the game flickers shots); a band with none reads DEMON_ATTACK_FAR."""
    from neuralgym.games.atari import DEMON_ATTACK_FAR

    spec = get_spec("NeuralDemonAttack-v0")
    player, shot = np.array([184, 70, 162]), np.array([252, 144, 144])
    rng = np.random.default_rng(2)
    seen = found = far_clean = far = 0
    action = 0
    with real(spec.env_id) as env:
        obs, info = env.reset(seed=2)
        for _ in range(2000):
            if rng.random() < 0.25:
                action = int(rng.integers(spec.n_actions))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
            cols = np.flatnonzero((obs[174:186] == player).all(-1).any(0))
            if not len(cols) or info["hit_timer"] > 0:
                continue  # no player drawn (between lives), or the hit flash
            centre = int(cols.min()) + 3
            assert cols.max() - cols.min() <= 6  # one 7-pixel player
            for band in range(3):
                dx = info[f"bullet_dx{band}"]
                lines = obs[178 - 8 * band:186 - 8 * band]  # the band's 8 lines
                if dx == DEMON_ATTACK_FAR:
                    far += 1
                    beside = lines[:, max(centre - 12, 0):centre + 13]
                    far_clean += not (beside == shot).all(-1).any()
                    continue
                assert -DEMON_ATTACK_FAR <= dx < DEMON_ATTACK_FAR and dx == int(dx)
                if abs(dx) < DEMON_ATTACK_FAR:
                    seen += 1
                    col = centre + int(dx)
                    found += bool((lines[:, col] == shot).all(-1).any())
    assert seen >= 100 and far >= 100
    assert found >= 0.8 * seen  # an off-by-one decode finds almost none
    assert far_clean >= 0.9 * far


# -- emulator state and determinism ----------------------------------------------------------


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_get_set_state_replays_bit_exactly(env_id: str) -> None:
    spec = get_spec(env_id)
    rng = np.random.default_rng(1)
    with real(env_id) as env:
        env.reset(seed=3)
        for _ in range(30):
            _, _, terminated, _, info = env.step(int(rng.integers(spec.n_actions)))
            assert not terminated
        meta_t = info["metadata"].copy()
        state = env.unwrapped.get_state()
        assert isinstance(state, bytes) and len(state) > 0

        actions = [int(a) for a in rng.integers(spec.n_actions, size=60)]
        frames, metas = [], []
        for a in actions:
            obs, _, terminated, _, info = env.step(a)
            frames.append(digest(obs))
            metas.append(info["metadata"])
            assert not terminated
        assert len(set(frames)) > 10  # the game moved on: a no-op restore would not pass
        assert not np.array_equal(metas[-1], meta_t)
        # wander off further, so that the restore has something to undo
        for a in rng.integers(spec.n_actions, size=40):
            env.step(int(a))

        for _ in range(2):  # a state restores any number of times
            info = env.unwrapped.set_state(state)
            assert tuple(info) == spec.info_keys
            np.testing.assert_array_equal(info["metadata"], meta_t)
            for t, a in enumerate(actions):
                obs, _, _, _, info = env.step(a)
                assert digest(obs) == frames[t], f"step {t} after set_state: frame differs"
                np.testing.assert_array_equal(info["metadata"], metas[t])

    with real(env_id) as fresh:  # a new env, never reset (the paired benchmark's case)
        fresh.unwrapped.set_state(state)
        obs, *_ = fresh.unwrapped.step(actions[0])
        assert digest(obs) == frames[0]


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_same_seed_same_actions_same_game(env_id: str) -> None:
    spec = get_spec(env_id)
    actions = [int(a) for a in np.random.default_rng(2).integers(spec.n_actions, size=150)]
    runs = []
    for _ in range(2):  # one env after the other (one retro emulator per process)
        with real(env_id) as env:
            runs.append(rollout(env, actions, seed=7))
    (frames_a, metas_a), (frames_b, metas_b) = runs
    assert frames_a == frames_b
    np.testing.assert_array_equal(metas_a, metas_b)
    assert len(set(frames_a)) > 10
    # and a reset of the same env replays it too
    with real(env_id) as env:
        rollout(env, actions[:50], seed=7)
        frames_c, metas_c = rollout(env, actions, seed=7)
    assert frames_c == frames_a
    np.testing.assert_array_equal(metas_c, metas_a)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [4, -1, 1.5, "a", np.array([1, 2]), None, 10**20])
def test_invalid_action_names_the_actions(action: Any) -> None:
    with real("NeuralBreakout-v0") as env:
        env.reset(seed=0)
        with pytest.raises(ValueError) as err:
            env.step(action)
    message = str(err.value)
    assert "invalid action" in message and "Discrete(4)" in message
    assert "0=NOOP, 1=FIRE, 2=RIGHT, 3=LEFT" in message


def test_valid_action_forms() -> None:
    with real("NeuralBreakout-v0") as env:
        env.reset(seed=0)
        for action in (0, np.int64(1), np.array(2), np.array([3]), np.uint8(0)):
            env.step(action)


def test_invalid_action_on_genesis() -> None:
    with real("NeuralAirstriker-v0") as env:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=re.escape("Discrete(6)")):
            env.step(6)
        with pytest.raises(ValueError, match="5=RIGHT_FIRE"):
            env.step(-1)


def test_unknown_env_id() -> None:
    with pytest.raises(UnknownEnvError) as err:
        make_real("NeuralNope-v0")
    assert isinstance(err.value, KeyError)
    message = str(err.value)
    assert "NeuralNope-v0" in message
    for env_id in GAMES:
        assert env_id in message


def test_missing_sonic_rom() -> None:
    game = get_spec("NeuralSonic-v0").game
    try:
        stable_retro.data.get_romfile_path(game)
    except FileNotFoundError:
        pass
    else:
        pytest.skip("a Sonic ROM is imported here")
    with pytest.raises(RomNotFoundError) as err:
        make_real("NeuralSonic-v0")
    assert isinstance(err.value, FileNotFoundError)
    assert "python3 -m stable_retro.import" in str(err.value)
    assert "NeuralSonic-v0" in str(err.value)
    # the failed make left no emulator behind: another Genesis env still opens
    with real("NeuralAirstriker-v0") as env:
        env.reset(seed=0)


def test_unknown_start_state() -> None:
    with pytest.raises(ValueError, match="unknown start state 'Level9'.*Level1"):
        make_real("NeuralAirstriker-v0", state="Level9")
    with real("NeuralAirstriker-v0", state="Level1") as env:  # and nothing leaked
        env.reset(seed=0)


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_step_before_reset(env_id: str) -> None:
    with real(env_id) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.unwrapped.step(0)
        with pytest.raises(RuntimeError, match="reset"):  # through make_real's TimeLimit too
            env.step(0)
        env.reset(seed=0)
        env.step(0)


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_reset_options_rejected(env_id: str) -> None:
    with real(env_id) as env:
        with pytest.raises(ValueError, match="options"):
            env.reset(seed=0, options={"state": "Level1"})
        env.reset(seed=0, options={})  # empty options are fine
