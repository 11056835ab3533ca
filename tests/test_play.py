"""neuralgym.play: the key map of every game, scripted headless runs of the game loop (real
game alone, mirror beside a stand-in dream), and the command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from neuralgym import GAMES, get_spec, make_real
from neuralgym.play import (
    PAUSE,
    QUIT,
    RESET,
    KeyMap,
    Screen,
    action_buttons,
    action_names_of,
    compose,
    play_loop,
    scripted,
)

HEADLESS = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
            "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
H, W = get_spec("NeuralBreakout-v0").obs_shape[:2]


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in HEADLESS.items():
        monkeypatch.setenv(k, v)


class Recorder(gym.Wrapper):
    """Records every action the env receives and the last observation."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.actions: list[int] = []
        self.resets = 0
        self.last_obs: np.ndarray | None = None

    def reset(self, **kwargs: Any):
        self.resets += 1
        obs, info = self.env.reset(**kwargs)
        self.last_obs = obs
        return obs, info

    def step(self, action: Any):
        self.actions.append(int(action))
        obs, *rest = self.env.step(action)
        self.last_obs = obs
        return (obs, *rest)


class _Model:
    context = 3


class EchoDream(gym.Env):
    """A stand-in dream env with Breakout's spaces: it starts from the frames passed as reset
    options and shows the last of them at every step."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, accept_options: bool = True):
        spec = get_spec("NeuralBreakout-v0")
        self.game = spec
        self.model = _Model()
        self.accept_options = accept_options
        self.observation_space = gym.spaces.Box(0, 255, spec.obs_shape, np.uint8)
        self.action_space = gym.spaces.Discrete(spec.n_actions)
        self.render_mode = "rgb_array"
        self.options: dict[str, np.ndarray] | None = None
        self._frame = np.zeros(spec.obs_shape, np.uint8)
        self._info = spec.info(np.zeros(len(spec.metadata), np.float32))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            if not self.accept_options:
                raise ValueError("this dream takes no reset options")
            self.options = options
            self._frame = options["frames"][-1].copy()
            self._info = self.game.info(options["metadata"][-1])
        return self._frame.copy(), self._info

    def step(self, action: Any):
        return self._frame.copy(), 0.0, False, False, self._info

    def render(self) -> np.ndarray:
        return self._frame.copy()


# -- key map ---------------------------------------------------------------------------------


def test_action_buttons_parse_names() -> None:
    assert action_buttons("NOOP") == frozenset()
    assert action_buttons("RIGHTFIRE") == {"RIGHT", "FIRE"}
    assert action_buttons("LEFT_FIRE") == {"LEFT", "FIRE"}
    assert action_buttons("DOWN_JUMP") == {"DOWN", "JUMP"}
    assert action_buttons("UPLEFTFIRE") == {"UP", "LEFT", "FIRE"}
    assert action_buttons("SELECT") == {"SELECT"}  # unknown names are buttons of their own


@pytest.mark.parametrize("env_id", list(GAMES))
def test_every_action_is_reachable_and_nothing_is_noop(env_id: str) -> None:
    names = get_spec(env_id).action_names
    km = KeyMap.from_action_names(names)
    assert km.action(set()) == names.index("NOOP")
    for a, buttons in enumerate(km.buttons):
        assert km.action(buttons) == a, names[a]
        for b in buttons:  # every button has a key
            assert b in km.keys


def test_key_map_of_each_game() -> None:
    def act(env_id: str, pressed: set[str]) -> str:
        km = KeyMap.from_action_names(get_spec(env_id).action_names)
        return km.action_names[km.action(pressed)]

    assert act("NeuralBreakout-v0", {"RIGHT"}) == "RIGHT"
    assert act("NeuralBreakout-v0", set()) == "NOOP"
    assert act("NeuralBreakout-v0", {"RIGHT", "FIRE"}) == "RIGHT"  # no combo: direction wins
    assert act("NeuralPong-v0", {"RIGHT", "FIRE"}) == "RIGHTFIRE"
    assert act("NeuralDemonAttack-v0", {"LEFT", "FIRE"}) == "LEFTFIRE"
    assert act("NeuralSonic-v0", {"RIGHT", "JUMP"}) == "RIGHT_JUMP"
    assert act("NeuralSonic-v0", {"RIGHT", "FIRE"}) == "RIGHT_JUMP"  # space is JUMP here
    assert act("NeuralSonic-v0", {"DOWN", "JUMP"}) == "DOWN_JUMP"
    assert act("NeuralSonic-v0", {"UP"}) == "NOOP"  # Sonic has no UP action
    assert act("NeuralAirstriker-v0", {"LEFT", "FIRE"}) == "LEFT_FIRE"
    assert act("NeuralAirstriker-v0", {"LEFT", "FIRE", "UP"}) == "LEFT_FIRE"  # closest subset
    km = KeyMap.from_action_names(get_spec("NeuralSonic-v0").action_names)
    assert km.keys["JUMP"] == "space" and km.keys["LEFT"] == "left"


def test_compose_puts_scaled_panes_side_by_side() -> None:
    a = np.full((2, 3, 3), 10, np.uint8)
    b = np.full((2, 3, 3), 20, np.uint8)
    out = compose([a, b], 2)
    assert out.shape == (4, 12, 3)
    assert (out[:, :6] == 10).all() and (out[:, 6:] == 20).all()


# -- the game loop ---------------------------------------------------------------------------


def test_scripted_real_breakout() -> None:
    env = Recorder(make_real("NeuralBreakout-v0", render_mode="rgb_array"))
    km = KeyMap.from_action_names(action_names_of(env))
    script = [{"FIRE"}] + [{"RIGHT"}] * 10 + [{"LEFT"}] * 10 + [set()] * 9
    screen = Screen("test", [env.observation_space.shape], scale=1)
    try:
        result = play_loop(env, km, scripted(script), screen, labels=["real"], fps=0,
                           log=lambda s: None)
    finally:
        screen.close()
        env.close()
    expected = [1] + [2] * 10 + [3] * 10 + [0] * 9  # FIRE, RIGHT, LEFT, NOOP
    assert result.actions == expected
    assert env.actions == expected  # the env received them
    assert result.steps == 30 and result.frames_shown == 30
    assert result.last_shown is not None and result.last_shown.shape[1] == W
    assert np.array_equal(result.last_shown[:H], env.last_obs)  # the frame shown is the game's
    assert not np.array_equal(result.first_shown[:H], result.last_shown[:H])  # the game moved


def test_pause_reset_and_max_steps() -> None:
    env = Recorder(EchoDream())
    km = KeyMap.from_action_names(action_names_of(env))
    script = [{"RIGHT"}, {PAUSE}, {"LEFT"}, {"LEFT"}, {PAUSE, "LEFT"}, {RESET}, {"FIRE"},
              {"FIRE"}, {"FIRE"}]
    screen = Screen("test", [env.observation_space.shape], scale=1)
    try:
        result = play_loop(env, km, scripted(script), screen, fps=0, max_steps=3,
                           log=lambda s: None)
    finally:
        screen.close()
    # RIGHT; pause (no step); 2 paused frames; unpause and LEFT; reset (no step); FIRE: 3 steps.
    assert env.actions == [2, 3, 1]
    assert env.resets == 2 and result.returns == [0.0]
    assert result.frames_shown == 7


def test_quit_ends_the_loop() -> None:
    env = EchoDream()
    km = KeyMap.from_action_names(action_names_of(env))
    screen = Screen("test", [env.observation_space.shape], scale=1)
    try:
        result = play_loop(env, km, scripted([{"RIGHT"}, {QUIT}, {"RIGHT"}]), screen, fps=0)
    finally:
        screen.close()
    assert result.actions == [2]


def test_mirror_shows_real_and_dream_side_by_side() -> None:
    real = Recorder(make_real("NeuralBreakout-v0", render_mode="rgb_array"))
    dream = Recorder(EchoDream())
    km = KeyMap.from_action_names(action_names_of(dream))
    scale = 2
    screen = Screen("test", [real.observation_space.shape, dream.observation_space.shape],
                    scale=scale)
    script = [{"FIRE"}, {"RIGHT"}, {"RIGHT"}, {"LEFT"}, set()]
    try:
        result = play_loop(dream, km, scripted(script), screen, real=real, seed=3, fps=0,
                           log=lambda s: None)
    finally:
        screen.close()
        real.close()
    assert screen.size[0] == 2 * W * scale
    assert result.first_shown is not None and result.first_shown.shape[1] == 2 * W * scale
    # The dream started from the real game's first L = model.context frames and NOOPs.
    opts = dream.unwrapped.options
    assert result.dream_started_from_real is True
    assert opts["frames"].shape == (3, H, W, 3) and opts["frames"].dtype == np.uint8
    assert opts["metadata"].shape == (3, 6) and opts["metadata"].dtype == np.float32
    assert opts["actions"].tolist() == [0, 0] and opts["actions"].dtype == np.int64
    assert real.actions[:2] == [0, 0]  # the NOOPs that made the context
    # Same keys, same actions, both panes.
    assert real.actions[2:] == dream.actions == [1, 2, 2, 3, 0]
    # At the first step the dream (echoing its last start frame) equals the real game there:
    # the left pane (real) shows the real game one step later, the right the start frame.
    first = result.first_shown[: H * scale]
    assert np.array_equal(first[:, W * scale:][::scale, ::scale], opts["frames"][-1])
    last = result.last_shown[: H * scale]
    assert np.array_equal(last[:, : W * scale][::scale, ::scale], real.last_obs)


def test_mirror_falls_back_when_the_dream_rejects_options() -> None:
    real = make_real("NeuralBreakout-v0", render_mode="rgb_array")
    dream = EchoDream(accept_options=False)
    km = KeyMap.from_action_names(action_names_of(dream))
    logs: list[str] = []
    screen = Screen("test", [real.observation_space.shape] * 2, scale=1)
    try:
        result = play_loop(dream, km, scripted([{"RIGHT"}] * 3), screen, real=real, fps=0,
                           log=logs.append)
    finally:
        screen.close()
        real.close()
    assert result.dream_started_from_real is False
    assert any("own reset" in line for line in logs)
    assert result.steps == 3


# -- command line ----------------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuralgym.play", *args],
                          env={**os.environ, **HEADLESS}, capture_output=True, text=True,
                          timeout=120)


def test_cli_real_runs_and_records(tmp_path: Path) -> None:
    out = tmp_path / "play.mp4"
    proc = _run("NeuralBreakout-v0", "--real", "--max-steps", "5", "--fps", "0",
                "--scale", "1", "--record", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "played 5 steps" in proc.stdout
    import imageio.v2 as imageio

    frames = list(imageio.get_reader(out).iter_data())  # list(reader) asks len() = inf
    assert len(frames) == 5 and frames[0].shape[1] == W


@pytest.mark.skipif("NeuralBreakout-v0" not in gym.registry,
                    reason="the dream env is not registered yet")
def test_cli_mirror_with_a_tiny_world_model(tiny_world_model: Path) -> None:
    proc = _run("NeuralBreakout-v0", "--model", str(tiny_world_model), "--device", "cpu",
                "--denoising-steps", "1", "--mirror", "--max-steps", "3", "--fps", "0",
                "--scale", "1")
    assert proc.returncode == 0, proc.stderr
    assert "played 3 steps" in proc.stdout


def test_cli_missing_model_is_a_clear_error() -> None:
    proc = _run("NeuralBreakout-v0", "--model", "/nonexistent", "--max-steps", "5")
    # Either the dream env's missing-model error or, before the Neural ids are registered,
    # gymnasium's unknown-id error: a message, exit 1, no traceback.
    assert proc.returncode == 1, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_missing_rom_is_a_clear_error() -> None:
    import stable_retro

    try:
        stable_retro.data.get_romfile_path("SonicTheHedgehog-Genesis-v0")
        pytest.skip("the Sonic ROM is imported here")
    except FileNotFoundError:
        pass
    proc = _run("NeuralSonic-v0", "--real", "--max-steps", "1")
    assert proc.returncode == 1
    assert "stable_retro.import" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_unknown_id() -> None:
    proc = _run("NeuralNope-v0", "--real")
    assert proc.returncode == 1 and "unknown env id" in proc.stderr


def test_status_goes_to_the_terminal_without_fonts(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import pygame

    def no_font(*args: Any) -> None:
        raise pygame.error("no fonts")

    monkeypatch.setattr(pygame.font, "Font", no_font)
    env = EchoDream()
    km = KeyMap.from_action_names(action_names_of(env))
    screen = Screen("test", [env.observation_space.shape], scale=1)
    try:
        result = play_loop(env, km, scripted([{"LEFT"}] * 2), screen, fps=0)
    finally:
        screen.close()
    assert screen.font is None and screen.size == (W, H)
    assert result.steps == 2
    assert "action LEFT" in capsys.readouterr().out
