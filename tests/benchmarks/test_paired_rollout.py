"""Subprocess runs of benchmarks/paired_rollout.py on small recorded Breakout and Pong datasets,
and its closed-loop metadata metrics in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from neuralgym.data import Dataset
from neuralgym.games import BREAKOUT, DEMON_ATTACK, PONG
from neuralgym.metrics import alexnet_weights_path

SCRIPT = "benchmarks/paired_rollout.py"
HORIZONS = ["1", "2", "4", "8"]
METRICS = ("mse", "psnr_mean_per_frame", "psnr_of_mean_mse", "ssim", "lpips")


@pytest.fixture(scope="module")
def main_run(breakout_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory, run_script):
    out = tmp_path_factory.mktemp("paired")
    proc = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--data", breakout_dataset.root,
                      "--split", "all", "--horizons", *HORIZONS, "--json", out / "r.json",
                      "--video", out / "r.mp4", "--video-starts", "2")
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((out / "r.json").read_text()), out / "r.mp4"


def test_json_layout(main_run):
    _, report, _ = main_run
    for key in ("env_id", "data", "split", "n_starts", "horizons", "replay_mismatches",
                "machine", "torch", "commit", "predictors"):
        assert key in report, key
    assert report["env_id"] == "NeuralBreakout-v0"
    assert report["split"] == "all"
    assert report["horizons"] == [1, 2, 4, 8]
    assert 0 < report["n_starts"] <= 6 * 4  # 6 episodes, at most 4 starts each
    assert list(report["predictors"]) == ["copy-last"]
    per_h = report["predictors"]["copy-last"]["horizons"]
    assert list(per_h) == HORIZONS
    for h in HORIZONS:
        for m in METRICS:
            assert "mean" in per_h[h][m], (h, m)
        for m in METRICS[:-1]:
            assert per_h[h][m]["n"] == report["n_starts"]
            lo, hi = per_h[h][m]["ci95"]
            assert lo <= hi, (h, m)
        lo, hi = per_h[h]["mse"]["ci95"]
        assert lo <= per_h[h]["mse"]["mean"] <= hi


def test_json_metadata_layout(main_run):
    _, report, _ = main_run
    block = report["predictors"]["copy-last"]["metadata"]
    assert block["rule_variables"] == ["score", "lives"]
    assert list(block["horizons"]) == HORIZONS
    for h in HORIZONS:
        per_h = block["horizons"][h]
        assert list(per_h["mae"]) == list(BREAKOUT.metadata_names)
        summaries = [*per_h["mae"].values(), *per_h["reward_sum"].values(),
                     per_h["episode_end"]["mismatch"]]
        assert sorted(per_h["reward_sum"]) == ["abs_error", "predicted", "real"]
        for s in summaries:
            assert s["n"] == report["n_starts"] and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
        assert "per_start" not in per_h["reward_sum"]["abs_error"]  # only with --per-start
        assert sorted(per_h["episode_end"]) == ["mismatch", "predicted", "real"]
    # copy-last holds m_t: a variable that moves (the paddle, the ball) has an error
    assert block["horizons"]["8"]["mae"]["player_x"]["mean"] > 0


def test_replay_is_bit_exact(main_run):
    assert main_run[1]["replay_mismatches"] == 0


def test_copy_last_error_grows_with_horizon(main_run):
    per_h = main_run[1]["predictors"]["copy-last"]["horizons"]
    assert per_h["1"]["mse"]["mean"] > 0
    assert per_h["8"]["mse"]["mean"] >= per_h["1"]["mse"]["mean"]


def test_lpips_not_measured_without_weights(main_run):
    lpips = main_run[1]["predictors"]["copy-last"]["horizons"]["1"]["lpips"]
    if alexnet_weights_path().is_file():
        assert isinstance(lpips["mean"], float)
    else:
        assert lpips["mean"] is None and "not measured" in lpips["note"]


def test_markdown_table(main_run):
    stdout = main_run[0].stdout
    assert "| predictor | h | MSE [95% CI]" in stdout
    header = ("| predictor | h | reward sum: real | predicted [95% CI] | abs error [95% CI] | "
              "episode end differs | ball_x MAE | ball_y MAE | player_x MAE | "
              "blocks_hit_count MAE | score MAE | lives MAE |")
    assert stdout.index("| predictor | h | MSE [95% CI]") < stdout.index(header)
    frames, meta = stdout.split(header)
    for table in (frames, meta):
        assert sum(line.startswith("| copy-last |") for line in table.splitlines()) == 4
    assert "| copy-last | 1 | " in meta and "| 0.00 [0.00, 0.00] |" in meta  # predicted: 0


def test_video(main_run):
    frames = iio.imread(main_run[2])
    # real | copy-last | |difference|, each 160 wide, with two 2-pixel separators
    assert frames.shape == (2 * 8, 210, 3 * 160 + 2 * 2, 3)


def test_default_predictor_without_model_is_skipped(dataset_recorder, tmp_path: Path, run_script):
    # no shipped DemonAttack model yet
    demon = dataset_recorder(tmp_path / "demon", "NeuralDemonAttack-v0", 1, 40)
    proc = run_script(SCRIPT, "--env", "NeuralDemonAttack-v0", "--data", demon.root, "--split",
                      "all", "--predictor", "default", "--horizons", "1", "2", "--json",
                      tmp_path / "r.json", "--video", tmp_path / "r.gif")
    assert proc.returncode == 0, proc.stderr
    assert "no shipped model for NeuralDemonAttack-v0" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["predictors"]) == ["copy-last"]
    assert report["skipped_predictors"] == ["default"]
    assert iio.imread(tmp_path / "r.gif").shape[1:3] == (210, 484)


PONG_HORIZONS = ["1", "8", "32"]


@pytest.fixture(scope="module")
def pong_run(dataset_recorder, tmp_path_factory: pytest.TempPathFactory, run_script):
    """Copy-last on 2 Pong episodes of 200 random steps (the opponent scores every ~80 steps),
    each start's values kept."""
    out = tmp_path_factory.mktemp("pong")
    dataset = dataset_recorder(out / "data", "NeuralPong-v0", 2, 200)
    proc = run_script(SCRIPT, "--env", "NeuralPong-v0", "--data", dataset.root, "--split", "all",
                      "--horizons", *PONG_HORIZONS, "--per-start", "--json", out / "r.json")
    assert proc.returncode == 0, proc.stderr
    return dataset, json.loads((out / "r.json").read_text())


def test_copy_last_reward_error_is_the_mean_real_reward(pong_run):
    """Copy-last keeps m_t, so it predicts no reward: its |error| is |real sum| start by start,
    and the real sums are the rewards the recording got from the game."""
    dataset, report = pong_run
    assert report["replay_mismatches"] == 0
    episodes = {ref.name: dataset.load(ref) for ref in dataset.episodes}
    block = report["predictors"]["copy-last"]["metadata"]
    assert block["rule_variables"] == ["enemy_score", "player_score"]
    assert list(block["horizons"]) == PONG_HORIZONS
    for h in PONG_HORIZONS:
        recorded = np.array([episodes[name].rewards[t : t + int(h)].sum()
                             for name, ts in report["starts"].items() for t in ts])
        r = block["horizons"][h]["reward_sum"]
        assert r["predicted"]["mean"] == 0 and r["predicted"]["ci95"] == [0, 0]
        np.testing.assert_allclose(r["abs_error"]["per_start"], np.abs(recorded))
        assert r["abs_error"]["mean"] == pytest.approx(np.abs(recorded).mean())
        assert r["real"]["mean"] == pytest.approx(recorded.mean())
        # no game reaches 21 points here: neither copy-last nor the game ends an episode
        assert block["horizons"][h]["episode_end"] == {
            "mismatch": {"mean": 0.0, "ci95": [0.0, 0.0], "n": report["n_starts"]},
            "real": 0.0, "predicted": 0.0}
    assert block["horizons"]["32"]["reward_sum"]["abs_error"]["mean"] > 0  # points were scored
    assert block["horizons"]["32"]["mae"]["enemy_score"]["mean"] > 0


@pytest.fixture(scope="module")
def paired(load_script):
    return load_script(SCRIPT, "paired_rollout")


def test_rule_variables(paired):
    assert paired.rule_variables(BREAKOUT) == ["score", "lives"]
    assert paired.rule_variables(PONG) == ["enemy_score", "player_score"]
    assert paired.rule_variables(DEMON_ATTACK) == ["num_lives", "display_flag", "score"]


def test_metadata_metrics_by_the_games_rules(paired):
    """Pong, two starts, L = 3: the real opponent scores at step 2 of start 0; the dream has it
    score at steps 1 and 3 of start 0 (its 21st point at step 3: the episode ends) and the
    player score at step 1 of start 1."""
    names = PONG.metadata_names
    enemy, player, ball = (names.index(n) for n in ("enemy_score", "player_score", "ball_x"))
    last = np.zeros((2, len(names)), np.float32)
    last[:, enemy] = 19
    real = np.repeat(last[:, None], 3, 1)  # (2, 3, M)
    real[0, 1:, enemy] = 20
    pred = real.copy()
    pred[0, :, enemy] = [20, 20, 21]
    pred[1, :, player] = 1
    pred[1, :, ball] = [2, 4, 6]
    out = paired.metadata_metrics(PONG, last, real, pred, [1, 2, 3], per_start=True)
    assert out["rule_variables"] == ["enemy_score", "player_score"]
    h1, h2, h3 = (out["horizons"][h] for h in ("1", "2", "3"))
    assert [h["reward_sum"]["real"]["mean"] for h in (h1, h2, h3)] == [0, -0.5, -0.5]
    assert [h["reward_sum"]["predicted"]["mean"] for h in (h1, h2, h3)] == [0, 0, -0.5]
    # start 0: -1 vs 0, -1 vs -1, -2 vs -1; start 1: +1 vs 0 throughout
    assert [h["reward_sum"]["abs_error"]["per_start"] for h in (h1, h2, h3)] == [
        [1, 1], [0, 1], [1, 1]]
    assert h2["reward_sum"]["abs_error"]["mean"] == 0.5
    assert [h["episode_end"]["mismatch"]["mean"] for h in (h1, h2, h3)] == [0, 0, 0.5]
    assert h3["episode_end"]["predicted"] == 0.5 and h3["episode_end"]["real"] == 0
    assert h1["mae"]["enemy_score"]["mean"] == 0.5 and h2["mae"]["enemy_score"]["mean"] == 0
    assert [h["mae"]["ball_x"]["mean"] for h in (h1, h2, h3)] == [1, 2, 3]
    assert "per_start" not in paired.metadata_metrics(
        PONG, last, real, pred, [1], per_start=False)["horizons"]["1"]["reward_sum"]["abs_error"]


@pytest.mark.parametrize("decoder,used,bf16", [("auto", "vae", False), ("fast", "fast", False),
                                               ("fast", "fast", True)])
def test_default_predictor_is_the_shipped_model(decoder: str, used: str, bf16: bool,
                                                breakout_dataset: Dataset, tmp_path: Path,
                                                run_script):
    proc = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--data", breakout_dataset.root,
                      "--split", "all", "--predictor", "default", "--episodes", "1",
                      "--starts-per-episode", "1", "--horizons", "1", "2", "--json",
                      tmp_path / "r.json", "--denoising-steps", "1", "--decoder", decoder,
                      *(["--bf16-weights"] if bf16 else []))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["skipped_predictors"] == []
    assert sorted(report["predictors"]) == ["copy-last", "default"]
    assert report["predictors"]["default"]["folder"].endswith("neuralgym/shipped/breakout")
    assert report["predictors"]["default"]["denoising_steps"] == 1
    assert report["predictors"]["default"]["decoder"] == used  # shipped: both, VAE default
    assert report["predictors"]["default"]["bf16_weights"] is bf16
    mse = report["predictors"]["default"]["horizons"]["1"]["mse"]["mean"]
    assert 0 <= mse < 1000



def test_fast_decoder_asked_of_a_folder_without_one(breakout_dataset: Dataset,
                                                    tiny_world_model: Path, tmp_path: Path,
                                                    run_script):
    proc = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--data", breakout_dataset.root,
                      "--split", "all", "--predictor", tiny_world_model, "--horizons", "1",
                      "--decoder", "fast", "--json", tmp_path / "r.json")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "has no fast decoder: train one with training/train_decoder.py" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_replay_mismatch_is_counted_and_warned(breakout_dataset: Dataset, tmp_path: Path,
                                               run_script):
    data = Path(shutil.copytree(breakout_dataset.root, tmp_path / "data"))
    name = breakout_dataset.episodes[0].name
    frames = np.load(data / "episodes" / name / "frames.npy", mmap_mode="r+")
    frames[3] = 255 - frames[3]  # o_3 no longer what the emulator shows after o_0, a_0..a_2
    frames.flush()
    del frames
    proc = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--data", data, "--split", "all",
                      "--episodes", "1", "--starts-per-episode", "1", "--horizons", "1", "4",
                      "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: 1 of 1 starts did not replay bit-exactly" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["replay_mismatches"] == 1
    assert report["replay_mismatch_starts"] == [{"episode": name, "t": 0}]


@pytest.mark.parametrize("case", ["missing-data", "wrong-env", "horizon-too-long",
                                  "zero-denoising-steps"])
def test_bad_inputs_fail_clearly(case: str, breakout_dataset: Dataset, tmp_path: Path, run_script):
    args = {"env": "NeuralBreakout-v0", "data": breakout_dataset.root, "horizons": "1"}
    expect = {
        "missing-data": ("does not exist",),
        "wrong-env": ("holds NeuralBreakout-v0 episodes, not NeuralPong-v0",),
        "horizon-too-long": ("no start fits", "longer episodes", "smaller --horizons"),
        "zero-denoising-steps": ("--denoising-steps must be at least 1, got 0",),
    }[case]
    extra = ["--denoising-steps", "0"] if case == "zero-denoising-steps" else []
    if case == "missing-data":
        args["data"] = tmp_path / "nothing-here"
    elif case == "wrong-env":
        args["env"] = "NeuralPong-v0"
    elif case == "horizon-too-long":
        args["horizons"] = "500"
    proc = run_script(SCRIPT, "--env", args["env"], "--data", args["data"], "--horizons",
                      args["horizons"], "--json", tmp_path / "r.json", "--split", "all", *extra)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    for text in expect:
        assert text in proc.stderr, proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_copy_last_matches_design_values(tmp_path: Path, dataset_recorder, run_script):
    """Breakout, uniform random policy, frameskip 4, ~4,000 steps: DESIGN.md's copy-last MSE."""
    dataset = dataset_recorder(tmp_path / "data", "NeuralBreakout-v0", episodes=25, max_steps=500)
    assert dataset.num_steps() >= 3000
    proc = run_script(SCRIPT, "--env", "NeuralBreakout-v0", "--data", dataset.root, "--split",
                      "all", "--starts-per-episode", "1000", "--episodes", "1000", "--batch-size",
                      "64", "--horizons", "1", "2", "4", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["replay_mismatches"] == 0
    per_h = report["predictors"]["copy-last"]["horizons"]
    measured = {h: per_h[h]["mse"]["mean"] for h in ("1", "2", "4")}
    design = {"1": 26.0, "2": 34.6, "4": 42.3}
    print(f"copy-last MSE over {report['n_starts']} starts ({dataset.num_steps()} steps): "
          + ", ".join(f"h={h}: {measured[h]:.1f} (DESIGN {design[h]})" for h in design))
    for h, want in design.items():
        assert abs(measured[h] - want) <= 0.35 * want, (h, measured[h], want)
