"""benchmarks/pong_frames.py: the ball and paddle in Pong's frames against the RAM in info."""

from __future__ import annotations

import json

import numpy as np
import pytest

SCRIPT = "benchmarks/pong_frames.py"
BACKGROUND, BALL, PADDLE = (144, 72, 17), (236, 236, 236), (92, 186, 92)


@pytest.fixture(scope="module")
def pong_frames(load_script):
    return load_script(SCRIPT, "pong_frames_script")


@pytest.fixture(scope="module")
def real_run(pong_frames) -> dict[str, np.ndarray]:
    """240 steps of the real game with random actions (2 seeds): frames and info's RAM."""
    from neuralgym import make_real

    frames, ram = [], []
    for seed in (0, 1):
        env = make_real("NeuralPong-v0")
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(120):
            obs, _, terminated, truncated, info = env.step(int(rng.integers(6)))
            frames.append(obs)
            ram.append([info[k] for k in pong_frames.VARIABLES])
            assert not (terminated or truncated)
        env.close()
    ram_ = np.asarray(ram, np.float64)
    return {"frames": np.asarray(frames), **dict(zip(pong_frames.VARIABLES, ram_.T, strict=True))}


def test_real_frames_agree_with_ram_up_to_a_constant_offset(pong_frames, real_run):
    ball = pong_frames.detect_ball(real_run["frames"])
    paddle = pong_frames.detect_paddle(real_run["frames"])
    assert ball.shape == (240, 2) and paddle.shape == (240,)
    rows = {"seen_ball_x": ball[:, 0], "seen_ball_y": ball[:, 1], "seen_paddle_y": paddle,
            **{k: real_run[k] for k in pong_frames.VARIABLES}}
    offsets = pong_frames.calibrate(rows)
    # the game draws the ball at about (ball_x - 48.5, ball_y - 12.5), the paddle at
    # player_y - 6 (a half-pixel either way)
    assert offsets["ball_x"] == pytest.approx(-48.5, abs=1)
    assert offsets["ball_y"] == pytest.approx(-12.5, abs=1)
    assert offsets["paddle_y"] == pytest.approx(-6, abs=1)
    # the spec's screen positions (the denoiser's position maps) are these offsets
    from neuralgym.games import get_spec

    screen = {v.name: v.screen for v in get_spec("NeuralPong-v0").metadata if v.screen}
    assert set(screen) == {"ball_x", "ball_y", "player_y"}
    for var, key, axis in (("ball_x", "ball_x", "x"), ("ball_y", "ball_y", "y"),
                           ("player_y", "paddle_y", "y")):
        assert screen[var][0] == axis and screen[var][1] == pytest.approx(offsets[key], abs=1)
    in_play = real_run["ball_y"] > 0
    seen = np.isfinite(ball).all(1)
    assert in_play.sum() > 100 and (~in_play).sum() > 20  # rallies and pauses after points
    assert (seen & in_play).sum() >= 0.95 * in_play.sum()
    assert not (seen & ~in_play).any()  # no ball drawn while out of play
    both = seen & in_play
    np.testing.assert_allclose(ball[both, 0], real_run["ball_x"][both] + offsets["ball_x"],
                               atol=1)
    np.testing.assert_allclose(ball[both, 1], real_run["ball_y"][both] + offsets["ball_y"],
                               atol=1)
    # the paddle: seen every step, also where it goes behind a wall (player_y near the ends)
    assert np.isfinite(paddle).all()
    assert real_run["player_y"].min() < 45 or real_run["player_y"].max() > 195
    np.testing.assert_allclose(paddle, real_run["player_y"] + offsets["paddle_y"], atol=1)
    s = pong_frames.summary(rows, offsets)
    assert s["ball_seen"] >= 0.95 and s["ball_near"] >= 0.95
    assert s["paddle_seen"] == 1.0 and s["paddle_near"] == 1.0
    assert s["ball_error_x_median"] <= 0.5 and s["ball_seen_out_of_play"] == 0.0
    assert s["in_play_off_field"] == 0  # the game's ball in play is always on the screen


def frame() -> np.ndarray:
    f = np.empty((210, 160, 3), np.uint8)
    f[:] = BACKGROUND
    f[24:34] = f[194:] = BALL  # the walls: outside the playfield, never the ball
    return f


def test_synthetic_frames_give_the_blobs_centroids(pong_frames):
    ball_paddle = frame()
    ball_paddle[100:104, 60:62] = (200, 205, 190)  # a blurred grey ball: centre (60.5, 101.5)
    ball_paddle[80:96, 140:144] = PADDLE  # centre y 87.5
    ball_paddle[80:96, 16:20] = (213, 130, 74)  # the enemy's paddle: neither
    clipped = frame()
    clipped[34:38, 141:143] = (110, 170, 100)  # a paddle half behind the top wall: 4 rows
    clipped[192:194, 30:32] = BALL  # a ball half behind the bottom wall: 2 rows
    empty = frame()
    frames = np.stack([ball_paddle, clipped, empty])
    ball = pong_frames.detect_ball(frames)
    np.testing.assert_allclose(ball[0], [60.5, 101.5])
    np.testing.assert_allclose(ball[1], [30.5, 192 + 1.5])  # centred from its top row
    assert np.isnan(ball[2]).all()
    paddle = pong_frames.detect_paddle(frames)
    np.testing.assert_allclose(paddle[:2], [87.5, 37 - 7.5])  # centred from its bottom row
    assert np.isnan(paddle[2])


def test_summary_counts_shares_and_medians(pong_frames):
    nan = np.nan
    offsets = {"ball_x": -48.0, "ball_y": -12.0, "paddle_y": -6.0}
    rows = {  # 8 steps: 5 in play (one ball unseen, one 10 px off in y, one with the RAM
        # position off the playfield: ball_x -8), 3 out of play (one showing a ball)
        "ball_x": np.array([100, 100, 100, 100, 0, 0, -8, 0], float),
        "ball_y": np.array([50, 50, 50, 50, 0, 0, 4, 0], float),
        "seen_ball_x": np.array([52, 53, 54, nan, nan, 70, nan, nan]),
        "seen_ball_y": np.array([38, 38, 48, nan, nan, 90, nan, nan]),
        "player_y": np.array([100, 100, 100, 100, 100, nan, 100, nan]),  # nan: info lacked it
        "seen_paddle_y": np.array([94, 96, 84, nan, 94, 94, nan, nan]),
    }
    s = pong_frames.summary(rows, offsets)
    assert s["steps"] == 8 and s["in_play"] == 5 and s["out_of_play"] == 3
    assert s["ball_seen"] == pytest.approx(0.6)
    assert s["in_play_off_field"] == 1 and s["ball_seen_on_field"] == pytest.approx(0.75)
    assert s["ball_error_x_median"] == 1.0 and s["ball_error_y_median"] == 0.0  # x 0, 1, 2
    assert s["ball_near"] == pytest.approx(0.4)  # the third is 10 px off in y
    assert s["ball_seen_out_of_play"] == pytest.approx(1 / 3)
    assert s["paddle_steps"] == 6 and s["paddle_seen"] == pytest.approx(4 / 6)
    assert s["paddle_error_median"] == 1.0  # |errors| 0, 2, 10, 0
    assert s["paddle_near"] == pytest.approx(0.5)
    # (L, N) arrays give the same as flat ones; nothing in play: None, not a division by 0
    assert pong_frames.summary({k: v.reshape(4, 2) for k, v in rows.items()}, offsets) == s
    idle = {k: v[4:5] for k, v in rows.items()}
    assert pong_frames.summary(idle, offsets)["ball_seen"] is None
    table = pong_frames.markdown_table({"real": s})
    assert table[2].startswith("| real | 5 (1) | 0.60 (0.75) | 1.0 / 0.0 | 0.40 | 0.33 (3) |")
    with pytest.raises(ValueError, match="ball_x"):
        pong_frames.calibrate(idle)


def test_info_values_mark_missing_keys_nan(pong_frames):
    info = {"ball_x": np.array([3.0, 0.0]), "_ball_x": np.array([True, False]),
            "ball_y": np.array([1.0, 2.0])}
    v = pong_frames.info_values(info, 2)
    np.testing.assert_array_equal(v["ball_x"], [3.0, np.nan])
    np.testing.assert_array_equal(v["ball_y"], [1.0, 2.0])
    assert np.isnan(v["player_y"]).all()


def test_bad_arguments_are_clear_errors(run_script):
    for args in (["--envs", "0"], ["--steps", "0"], ["--env", "NeuralBreakout-v0"]):
        r = run_script(SCRIPT, *args)
        assert r.returncode != 0 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = run_script(SCRIPT, "--env", "NeuralBreakout-v0")
    assert "only NeuralPong-v0" in r.stderr


def test_script_runs_real_game_and_shipped_dream(run_script, tmp_path):
    """End to end through the shipped Pong model (about 15 s on a 2-core CPU); 20 steps so
    that the real game's ball comes into play (after about 14) and calibrates."""
    out = tmp_path / "frames.json"
    r = run_script(SCRIPT, "--model", "default", "--envs", "2", "--steps", "20",
                   "--denoising-steps", "1", "--json", out, check=True)
    assert "| real |" in r.stdout and "| dream |" in r.stdout
    report = json.loads(out.read_text())
    assert report["benchmark"] == "pong_frames" and report["args"]["steps"] == 20
    assert report["offsets"]["ball_x"] == pytest.approx(-48.5, abs=1)
    real, dream = report["results"]["real"], report["results"]["dream"]
    assert real["steps"] == dream["steps"] == 40
    assert real["ball_near"] == 1.0 and real["paddle_near"] == 1.0
    assert 0 <= dream["paddle_seen"] <= 1 and dream["wall_s"] > 0


class Renderer:
    """A stand-in world model that draws the ball and paddle where the next metadata puts
    them (`obey`) or where the last context metadata had them (ignoring the new metadata)."""

    NAMES = ["player_y", "player_x", "enemy_y", "enemy_x", "ball_x", "ball_y"]
    OFFSETS = {"ball_x": -48.5, "ball_y": -12.5, "paddle_y": -6.5}

    def __init__(self, obey: bool):
        from types import SimpleNamespace

        import torch

        self.obey, self.device = obey, torch.device("cpu")
        self.g = SimpleNamespace(config=SimpleNamespace(metadata_names=self.NAMES))

    def start(self, frames, metadata, actions):
        return np.asarray(metadata)[:, -1]

    def draw(self, m: np.ndarray) -> np.ndarray:
        f = frame()
        x, y = m[4] + self.OFFSETS["ball_x"], m[5] + self.OFFSETS["ball_y"]
        f[int(y - 1.5):int(y - 1.5) + 4, int(x - 0.5):int(x - 0.5) + 2] = BALL
        p = m[0] + self.OFFSETS["paddle_y"]
        f[int(p - 7.5):int(p - 7.5) + 16, 140:144] = PADDLE
        return f

    def step(self, state, actions, generator, metadata):
        import torch

        rows = metadata[:, 0].numpy() if self.obey else state
        return torch.from_numpy(np.stack([self.draw(m) for m in rows])[:, None]), metadata, state


def test_control_tells_a_model_that_obeys_from_one_that_ignores(pong_frames):
    n, K = 6, 4
    rng = np.random.default_rng(0)
    meta = np.zeros((n, K + 1, 6))
    meta[:, :, 0] = rng.uniform(60, 160, (n, 1))  # player_y
    meta[:, :, 4] = rng.uniform(80, 180, (n, 1))  # ball_x
    meta[:, :, 5] = rng.uniform(70, 170, (n, 1))  # ball_y
    windows = (np.zeros((n, K, 210, 160, 3), np.uint8), meta, np.zeros((n, K), np.int64))
    for obey, follows, stays in ((True, 1.0, 0.0), (False, 0.0, 1.0)):
        result = pong_frames.control(Renderer(obey), windows, Renderer.OFFSETS, 24.0, seed=0)
        assert result["windows"] == n and result["shift_px"] == 24.0
        for var in ("ball_x", "ball_y", "player_y"):
            assert result[var] == {"near_unmoved": 1.0, "follows": follows, "stays": stays}, var


def test_control_windows_come_from_the_real_game_in_play(pong_frames):
    names = ["player_y", "ball_x", "ball_y"]
    frames, metadata, actions = pong_frames.control_windows(
        "NeuralPong-v0", names, 3, 4, seed=0, policy=lambda obs, info: 2)
    assert frames.shape == (4, 3, 210, 160, 3) and metadata.shape == (4, 4, 3)
    assert actions.shape == (4, 3) and (actions == 2).all()
    assert (metadata[:, -1, 2] > 0).all()  # the ball in play at the step to dream
