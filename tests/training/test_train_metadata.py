"""training/train_metadata.py end to end in a subprocess, on a latent cache made from the
recorded Breakout fixture (frames pooled to 3 x 13 x 10 stand in for VAE latents)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder
from neuralgym.models.metadata import MetadataConfig, MetadataPredictor, cache_batch, to_tensors

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "train_metadata.py"
TINY = ["--window", "4", "--hidden", "16", "--layers", "1", "--latent-width", "4",
        "--latent-dim", "8", "--batch-size", "8", "--warmup", "2", "--device", "cpu"]


def test_help(run_script) -> None:
    r = run_script(SCRIPT, "--help")
    assert r.returncode == 0 and "--categorical-as-classes" in r.stdout


def test_missing_cache_is_a_clear_error(tmp_path: Path, run_script) -> None:
    r = run_script(SCRIPT, "--cache", str(tmp_path / "nope"), "--out", str(tmp_path / "wm"))
    assert r.returncode != 0 and "is not a latent cache" in r.stderr


def test_trains_saves_and_evaluates(breakout_cache: Path, tmp_path: Path, run_script) -> None:
    out = tmp_path / "wm"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--kind", "transformer",
                   "--component", "metadata_tf", "--steps", "12", "--checkpoint-every", "5", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "copy MAE" in r.stdout
    folder = ModelFolder(out)
    assert folder.read_config()["env_id"] == "NeuralBreakout-v0"
    cfg = folder.component_config("metadata_tf", MetadataConfig)
    assert cfg.kind == "transformer" and cfg.window == 4 and cfg.n_actions == 4
    assert cfg.latent_channels == 3 and tuple(cfg.latent_hw) == (13, 10)
    assert cfg.metadata_names[-1] == "lives" and cfg.kinds[-1] == "categorical"
    assert cfg.num_classes[-1] == 6 and cfg.classified == (len(cfg.metadata_names) - 1,)
    assert json.loads((out / "train" / "metadata_tf" / "checkpoint" / "state.json")
                      .read_text())["step"] == 12
    result = json.loads((out / "metadata_tf_eval.json").read_text())
    assert result["component"] == "metadata_tf" and result["test_windows"] > 0
    assert set(result["variables"]) == set(cfg.metadata_names)
    lives = result["variables"]["lives"]
    assert {"mae", "copy_mae", "accuracy", "copy_accuracy"} <= set(lives)
    assert lives["changed_windows"] == round(lives["changed"] * result["test_windows"])
    assert ("changed_accuracy" in lives) == (lives["changed_windows"] > 0)
    assert ("expected_change_at_changes" in lives) == (lives["changed_windows"] > 0)
    # summed changes: real, argmax, expected (lives only go down in Breakout; a loss is -1)
    assert lives["change_sum"] == -lives["changed_windows"]
    for key in ("argmax_change_sum", "expected_change_sum"):
        assert abs(lives[key]) <= 5 * result["test_windows"]  # classes 0-5, so |delta| <= 5
    # a 12-step model's class probabilities are spread: their mean is not the argmax
    assert lives["expected_change_sum"] != lives["argmax_change_sum"]
    # by the value fed: windows, g_phi's changes, the recording's, summing to the totals
    by_value = lives["changes_by_value"].values()
    assert sum(n for n, _, _ in by_value) == result["test_windows"]
    assert sum(real for _, _, real in by_value) == lives["changed_windows"]
    assert all(0 <= made <= n for n, made, _ in by_value)
    assert "accuracy" not in result["variables"]["ball_x"]
    assert "expected_change_sum" not in result["variables"]["ball_x"]
    # events of a regressed variable: steps where constant velocity is off (a bounce)
    ball = result["variables"]["ball_x"]
    assert 0 < ball["event_windows"] < result["test_windows"]
    assert ball["event_velocity_mae"] > 0.5 and ball["event_mae"] >= 0
    assert ball["velocity_mae"] <= ball["event_velocity_mae"]  # events are where it is off
    assert "event_windows" not in lives
    # the saved component loads and predicts raw-scale values
    model = folder.load_component("metadata_tf", MetadataPredictor(cfg))
    cache = LatentCache(breakout_cache)
    b = to_tensors(cache_batch(cache, cache.window_starts("test", 5, 1)[:4], 4))
    pred = model.predict(b["metadata"][:, :-1], b["latents"], b["actions"])
    assert pred.shape == (4, len(cfg.metadata_names))
    assert torch.all(pred[:, -1] == pred[:, -1].round())
    # --eval-only: the same numbers again from the saved (float32) weights, nothing trained
    weights = (out / "metadata_tf.safetensors").read_bytes()
    (out / "metadata_tf_eval.json").unlink()
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--component",
                   "metadata_tf", "--eval-only", "--device", "cpu", check=True)
    again = json.loads((out / "metadata_tf_eval.json").read_text())
    assert again["steps"] is None and again["kind"] == "transformer"
    assert again["normalised_mae"] == result["normalised_mae"]
    assert (out / "metadata_tf.safetensors").read_bytes() == weights
    # --eval-split all: every episode's windows (a recording the component never saw)
    run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--component", "metadata_tf",
               "--eval-only", "--eval-split", "all", "--device", "cpu", check=True)
    every = json.loads((out / "metadata_tf_eval.json").read_text())
    assert every["split"] == "all" and again["split"] == "test"
    assert every["test_windows"] > again["test_windows"]
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "empty", "--eval-only")
    assert r.returncode != 0 and "has no metadata component to evaluate" in r.stderr


def test_killed_and_resumed_matches_uninterrupted(breakout_cache: Path, tmp_path: Path,
                                                  run_script) -> None:
    common = ["--cache", str(breakout_cache), "--kind", "lstm", "--steps", "6",
              "--checkpoint-every", "2", "--eval-windows", "16", *TINY]
    whole, split = tmp_path / "whole", tmp_path / "split"
    r = run_script(SCRIPT, *common, "--out", str(whole))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_script(SCRIPT, *common, "--out", str(split), "--exit-after", "5")
    assert r.returncode == 3, r.stderr[-3000:]
    state = split / "train" / "metadata" / "checkpoint" / "state.json"
    assert json.loads(state.read_text())["step"] == 4
    r = run_script(SCRIPT, *common, "--out", str(split))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step 4" in r.stdout
    assert json.loads(state.read_text())["step"] == 6
    a, b = load_file(whole / "metadata.safetensors"), load_file(split / "metadata.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ea = json.loads((whole / "metadata_eval.json").read_text())
    eb = json.loads((split / "metadata_eval.json").read_text())
    assert ea["variables"] == eb["variables"]


def test_closed_loop_rollout_with_the_folders_denoiser(breakout_cache: Path, tmp_path: Path,
                                                      run_script) -> None:
    """--rollout R --dream-steps S trains g_phi on its own predictions and the denoiser's
    latents; it needs a denoiser in the folder, and --dream-steps needs --rollout > 1."""
    out = tmp_path / "wm"
    common = ["--cache", str(breakout_cache), "--out", str(out), "--eval-windows", "16", *TINY]
    r = run_script(SCRIPT, *common, "--steps", "2", "--rollout", "3", "--dream-steps", "1")
    assert r.returncode != 0 and "needs a trained denoiser" in r.stderr
    r = run_script(SCRIPT, *common, "--steps", "2", "--dream-steps", "1")
    assert r.returncode != 0 and "--dream-steps needs --rollout > 1" in r.stderr
    den = ROOT / "training" / "train_denoiser.py"
    run_script(den, "--cache", breakout_cache, "--out", out, "--stage", "cond", "--steps", "2",
               "--context", "2", "--channels", "8", "16", "--norm-groups", "4", "--heads", "2",
               "--token-dim", "16", "--batch-size", "4", "--eval-windows", "2", "--eval-steps",
               "1", "--device", "cpu", check=True)
    r = run_script(SCRIPT, *common, "--steps", "2", "--change-weight", "0")
    assert r.returncode != 0 and "--change-weight and --event-weight above 0" in r.stderr
    r = run_script(SCRIPT, *common, "--steps", "2", "--event-weight", "-1")
    assert r.returncode != 0 and "--event-weight above 0" in r.stderr
    r = run_script(SCRIPT, *common, "--steps", "3", "--rollout", "3", "--dream-steps", "1",
                   "--change-weight", "5", "--event-weight", "4", "--reg-loss", "l1")
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((out / "train" / "metadata" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3 and state["extra"]["args"]["rollout"] == 3
    assert state["extra"]["args"]["change_weight"] == 5
    assert state["extra"]["args"]["event_weight"] == 4
    assert state["extra"]["args"]["reg_loss"] == "l1"
    assert json.loads((out / "metadata_eval.json").read_text())["test_windows"] > 0
    # the closed-loop evaluation: own metadata, dreamt latents, both (as the dream runs)
    r = run_script(SCRIPT, *common, "--eval-only", "--eval-dream-steps", "1")
    assert r.returncode != 0 and "--eval-dream-steps needs --eval-rollout" in r.stderr
    r = run_script(SCRIPT, *common, "--eval-only", "--eval-rollout", "3", "--eval-dream-steps",
                   "1", "--eval-rollout-windows", "5")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "closed loop: 3 calls from each of 5 test windows" in r.stdout
    closed = json.loads((out / "metadata_eval.json").read_text())["closed_loop"]
    assert list(closed["modes"]) == ["own metadata", "dreamt latents", "dream"]
    recorded = []
    for mode in closed["modes"].values():
        assert mode["steps"] == 15 and 0.0 <= mode["in_sync"] <= 1.0
        counts = {}
        for name, v in mode["variables"].items():
            if "changes" in v:  # a classified variable: score, lives
                assert 0 <= v["false_changes"] <= v["changes"] <= 15
                counts[name] = v["recorded_changes"]
            else:
                assert v["last_call_mae"] >= 0.0
        assert counts  # Breakout's score and lives are classified
        recorded.append(counts)
    assert recorded[0] == recorded[1] == recorded[2]  # every mode against the same steps
    # with the recorded latents only: the one mode that needs no denoiser
    r = run_script(SCRIPT, *common, "--eval-only", "--eval-rollout", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    closed = json.loads((out / "metadata_eval.json").read_text())["closed_loop"]
    assert list(closed["modes"]) == ["own metadata"] and closed["dream_steps"] == 0
    assert closed["modes"]["own metadata"]["steps"] == 2 * closed["windows"]


def test_finetune_widens_classes_the_data_needs(breakout_cache: Path, tmp_path: Path,
                                                run_script) -> None:
    """Fine-tuning a committed g_phi with fewer classes than the data (or the game) needs
    widens it (`widen_classes`): the saved config has the new count and training runs."""
    from neuralgym.games import BREAKOUT

    out = tmp_path / "wm"
    names = BREAKOUT.metadata_names
    m = len(names)
    small = MetadataConfig(
        metadata_names=names, kinds=tuple(v.kind for v in BREAKOUT.metadata),
        num_classes=(0,) * (m - 1) + (3,), mean=(0.0,) * m, std=(1.0,) * m, n_actions=4,
        latent_channels=3, latent_hw=(13, 10), hidden=16, layers=1, window=4, latent_width=4,
        latent_dim=8)
    ModelFolder(out).save_component("metadata", MetadataPredictor(small), small)
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--steps", "2",
                   "--eval-windows", "16", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "fine-tuning the metadata" in r.stdout and "widened its classes" in r.stdout
    cfg = ModelFolder(out).component_config("metadata", MetadataConfig)
    assert cfg.num_classes[-1] == 6 and cfg.hidden == 16  # lives 0..5; its own architecture
    model = ModelFolder(out).load_component("metadata", MetadataPredictor(cfg))
    assert model.head[-1].out_features == (m - 1) + 6


def test_finetune_keeps_its_window_unless_a_recurrent_one_is_given_another(
        breakout_cache: Path, tmp_path: Path, run_script) -> None:
    """A committed g_phi is fine-tuned at its own window unless --window names another: a GRU
    reads any length, so it takes the new one (weights kept); a transformer, whose positions
    are one per step of its window, refuses with a clear message."""
    no_window = TINY[2:]
    assert "--window" not in no_window
    for kind in ("gru", "transformer"):
        out = tmp_path / kind
        r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--kind", kind,
                       "--steps", "2", "--eval-windows", "16", *TINY)
        assert r.returncode == 0, r.stderr[-3000:]
        shutil.rmtree(out / "train")  # a committed folder: weights, no checkpoint
    gru = tmp_path / "gru"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", gru, "--steps", "2",
                   "--eval-windows", "16", *no_window)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ModelFolder(gru).component_config("metadata", MetadataConfig).window == 4
    shutil.rmtree(gru / "train")
    before = load_file(gru / "metadata.safetensors")
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", gru, "--steps", "1", "--lr",
                   "0", "--eval-windows", "16", "--window", "7", *no_window)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "window 4 -> 7" in r.stdout
    assert ModelFolder(gru).component_config("metadata", MetadataConfig).window == 7
    after = load_file(gru / "metadata.safetensors")
    assert before.keys() == after.keys()
    for k in before:  # lr 0: the committed weights, now read over 7 steps
        torch.testing.assert_close(after[k].float(), before[k].float())
    assert json.loads((gru / "metadata_eval.json").read_text())["window"] == 7
    tf = tmp_path / "transformer"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tf, "--steps", "1",
                   "--window", "7", *no_window)
    assert r.returncode != 0 and "--window 4" in r.stderr and "Traceback" not in r.stderr


def test_finetune_adds_step_classes(breakout_cache: Path, tmp_path: Path, run_script) -> None:
    """--delta-classes D on a committed g_phi without step classes adds them to its
    whole-number regressed variables (`with_step_classes`) and trains; the saved config
    says so; asking for another D on a stepped g_phi is a clear error."""
    from neuralgym.games import BREAKOUT

    out = tmp_path / "wm"
    names = BREAKOUT.metadata_names
    m = len(names)
    plain = MetadataConfig(
        metadata_names=names, kinds=tuple(v.kind for v in BREAKOUT.metadata),
        num_classes=(0,) * (m - 1) + (6,), mean=(0.0,) * m, std=(1.0,) * m,
        integer=(True,) * m, n_actions=4, latent_channels=3, latent_hw=(13, 10), hidden=16,
        layers=1, window=4, latent_width=4, latent_dim=8)
    ModelFolder(out).save_component("metadata", MetadataPredictor(plain), plain)
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--steps", "2",
                   "--eval-windows", "16", "--delta-classes", "4", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "added step classes over -4..4" in r.stdout
    cfg = ModelFolder(out).component_config("metadata", MetadataConfig)
    assert cfg.delta_classes == 4 and len(cfg.stepped) == m - 1
    model = ModelFolder(out).load_component("metadata", MetadataPredictor(cfg))
    assert model.head[-1].out_features == (m - 1) + 6 + (m - 1) * 10
    again = tmp_path / "wm2"
    ModelFolder(again).save_component("metadata", model, cfg)
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", again, "--steps", "2",
                   "--delta-classes", "3", *TINY)
    assert r.returncode != 0 and "already" in r.stderr
    # --relative-classes R adds the positions' differences and velocities, and trains
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", again, "--steps", "2",
                   "--eval-windows", "16", "--relative-classes", "5", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "differences and velocities of" in r.stdout
    rel = ModelFolder(again).component_config("metadata", MetadataConfig)
    assert rel.relative_classes == 5 and len(rel.relative) >= 2
    trained = ModelFolder(again).load_component("metadata", MetadataPredictor(rel))
    assert trained.relative_embedding.weight.abs().sum() > 0  # the tables learnt something
    # --no-categorical-as-classes: the classified lives become stepped, and the run trains
    steps = tmp_path / "wm3"
    ModelFolder(steps).save_component("metadata", model, cfg)
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", steps, "--steps", "2",
                   "--eval-windows", "16", "--no-categorical-as-classes", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "['lives'] now predicted by their step change" in r.stdout
    cfg = ModelFolder(steps).component_config("metadata", MetadataConfig)
    assert cfg.classified == () and len(cfg.stepped) == m and not cfg.categorical_as_classes
    model = ModelFolder(steps).load_component("metadata", MetadataPredictor(cfg))
    assert model.head[-1].out_features == m + m * 10
    # its points are still counted, one step ahead and in closed loop, though not classified
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", steps, "--eval-only",
                   "--eval-windows", "16", "--eval-rollout", "2", "--eval-rollout-windows", "4",
                   *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((steps / "metadata_eval.json").read_text())
    lives = result["variables"]["lives"]
    assert not lives["classified"] and sum(n for n, _, _ in lives["changes_by_value"].values()) \
        == result["test_windows"]
    closed = result["closed_loop"]["modes"]["own metadata"]["variables"]["lives"]
    assert 0 <= closed["false_changes"] <= closed["changes"] <= 8
    assert closed["last_call_mae"] >= 0.0  # stepped: regressed too
    # a stepped variable's jumps (beyond -D..D), counted one step ahead and in closed loop
    ball = result["variables"]["ball_y"]
    assert ball["jump_windows"] >= 0 and ("jump_mae" in ball) == (ball["jump_windows"] > 0)
    for v in result["closed_loop"]["modes"]["own metadata"]["variables"].values():
        assert v["jumps"] >= 0 and (v["jump_mae"] is None) == (v["jumps"] == 0)
    # --jump-absolute: its stepped variables' jumps regress their value; resumed, it keeps so
    jumps = tmp_path / "wm5"
    ModelFolder(jumps).save_component("metadata", model, cfg)
    for n in (2, 4):
        r = run_script(SCRIPT, "--cache", breakout_cache, "--out", jumps, "--steps", str(n),
                       "--eval-windows", "16", "--jump-absolute", *TINY)
        assert r.returncode == 0, r.stderr[-3000:]
        assert ("now regress their value" in r.stdout) == (n == 2)
        assert ModelFolder(jumps).component_config("metadata", MetadataConfig).jump_absolute
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "new", "--steps", "2",
                   "--jump-absolute", *TINY)
    assert r.returncode != 0 and "needs step classes" in r.stderr
    # a g_phi without step classes cannot make its classes steps
    none = tmp_path / "wm4"
    ModelFolder(none).save_component("metadata", MetadataPredictor(plain), plain)
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", none, "--steps", "2",
                   "--no-categorical-as-classes", *TINY)
    assert r.returncode != 0 and "needs step classes" in r.stderr


def test_no_latent_input_trains_new_and_converts_a_committed_g_phi(
        breakout_cache: Path, tmp_path: Path, run_script) -> None:
    """--no-latent-input: a new g_phi reads no frames (no latent encoder saved), and a
    committed g_phi that reads them is converted (`without_latents`) and fine-tuned; both
    evaluate in closed loop."""
    new = tmp_path / "new"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", new, "--steps", "3",
                   "--eval-windows", "16", "--no-latent-input", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = ModelFolder(new).component_config("metadata", MetadataConfig)
    assert not cfg.latent_input
    model = ModelFolder(new).load_component("metadata", MetadataPredictor(cfg))
    assert not any(k.startswith("latent_encoder") for k in model.state_dict())
    old = tmp_path / "old"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", old, "--steps", "2",
                   "--eval-windows", "16", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ModelFolder(old).component_config("metadata", MetadataConfig).latent_input
    shutil.rmtree(old / "train")  # a committed folder: weights, no checkpoint
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", old, "--steps", "2",
                   "--eval-windows", "16", "--eval-rollout", "2", "--eval-rollout-windows", "4",
                   "--eval-dream-steps", "1", "--no-latent-input", *TINY)
    # no denoiser in the folder, and none needed: dreamt latents would change nothing
    assert r.returncode == 0, r.stderr[-3000:]
    assert "no longer reads the latent frames" in r.stdout
    assert not ModelFolder(old).component_config("metadata", MetadataConfig).latent_input
    result = json.loads((old / "metadata_eval.json").read_text())
    assert list(result["closed_loop"]["modes"]) == ["own metadata"]
    assert result["closed_loop"]["modes"]["own metadata"]["variables"]


def test_a_cache_of_metadata_only_trains_a_g_phi_that_reads_no_frames(
        breakout_cache: Path, tmp_path: Path, run_script) -> None:
    """A cache without latents (prepare_latents.py without --model) trains a g_phi with
    --no-latent-input only; a committed g_phi that reads frames is replaced with --fresh (its
    conversion needs latents), and the new one takes any latents the dream gives it."""
    full = LatentCache(breakout_cache)
    bare_root = tmp_path / "bare"
    LatentCache.write(bare_root, np.zeros((len(full.metadata), 0, 0, 0), np.float16),
                      full.metadata, full.actions, full.episodes, full.info)
    folder = tmp_path / "model"
    r = run_script(SCRIPT, "--cache", bare_root, "--out", folder, "--steps", "2", *TINY)
    assert r.returncode != 0 and "--no-latent-input" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", folder, "--steps", "2",
                   "--eval-windows", "16", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    shutil.rmtree(folder / "train")  # a committed folder: weights, no checkpoint
    r = run_script(SCRIPT, "--cache", bare_root, "--out", folder, "--steps", "2",
                   "--no-latent-input", *TINY)
    assert r.returncode != 0 and "--fresh" in r.stderr and "Traceback" not in r.stderr
    assert ModelFolder(folder).component_config("metadata", MetadataConfig).latent_input
    r = run_script(SCRIPT, "--cache", bare_root, "--out", folder, "--steps", "3",
                   "--eval-windows", "16", "--eval-rollout", "2", "--eval-rollout-windows", "4",
                   "--no-latent-input", "--fresh", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = ModelFolder(folder).component_config("metadata", MetadataConfig)
    assert not cfg.latent_input and cfg.latent_channels == 0
    result = json.loads((folder / "metadata_eval.json").read_text())
    assert result["steps"] == 3 and result["closed_loop"]["modes"]["own metadata"]["variables"]
    model = ModelFolder(folder).load_component("metadata", MetadataPredictor(cfg)).eval()
    b = to_tensors(cache_batch(LatentCache(bare_root), full.window_starts("test", 5, 1)[:4], 4))
    m, a = b["metadata"][:, :-1], b["actions"]
    frames = torch.randn(4, 4, *full.latent_shape)  # what the dream would pass
    torch.testing.assert_close(model.predict(m, frames, a), model.predict(m, b["latents"], a))
