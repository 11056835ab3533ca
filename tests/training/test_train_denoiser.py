"""training/train_denoiser.py end to end in subprocesses, on a latent cache made from the
recorded Breakout fixture (frames pooled to 3 x 13 x 10 stand in for VAE latents)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder
from neuralgym.models.denoiser import Denoiser, DenoiserConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "train_denoiser.py"
TINY = ["--context", "2", "--channels", "8", "16", "--norm-groups", "4", "--heads", "2",
        "--token-dim", "16", "--layers-per-block", "1", "--batch-size", "4", "--warmup", "2",
        "--eval-windows", "6", "--eval-steps", "1", "2", "--device", "cpu"]


def committed_copy(folder: Path, dest: Path) -> Path:
    """`dest`: `folder`'s config.json and denoiser weights alone, as a session commits them
    (no train/ checkpoint to resume)."""
    dest.mkdir()
    for f in ("config.json", "denoiser.safetensors"):
        (dest / f).write_bytes((folder / f).read_bytes())
    return dest


def test_help(run_script) -> None:
    r = run_script(SCRIPT, "--help")
    assert r.returncode == 0 and "--action-context" in r.stdout and "--lora-rank" in r.stdout


def test_missing_cache_is_a_clear_error(tmp_path: Path, run_script) -> None:
    r = run_script(SCRIPT, "--cache", str(tmp_path / "nope"), "--out", str(tmp_path / "wm"))
    assert r.returncode != 0 and "is not a latent cache" in r.stderr


def test_change_boost(breakout_cache: Path, tmp_path: Path, run_script) -> None:
    """--change-boost says how many windows it boosts and trains; bad values are an error."""
    out = tmp_path / "wm"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--base", "none",
                   "--change-boost", "8", "--change-top", "0.05", "--steps", "2", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--change-boost:" in r.stdout and "drawn 8x as often" in r.stdout
    assert (out / "denoiser.safetensors").exists()
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "bad",
                   "--change-boost", "8", "--change-top", "1.5", "--steps", "2", *TINY)
    assert r.returncode != 0 and "--change-top / --change-boost" in r.stderr
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "rw", "--base", "none",
                   "--change-boost", "8", "--change-top", "0.05", "--change-reweight",
                   "--steps", "2", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "rw" / "denoiser.safetensors").exists()
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "bad2",
                   "--change-reweight", "--steps", "2", *TINY)
    assert r.returncode != 0 and "give --change-boost too" in r.stderr


def test_lora_then_cond_stage(breakout_cache: Path, tmp_path: Path, run_script) -> None:
    out = tmp_path / "wm"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--stage", "lora",
                   "--steps", "4", "--checkpoint-every", "3", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--stage", "cond",
                   "--lora-rank", "2", "--frames-per-call", "2", "--action-encoding", "onehot",
                   "--steps", "4", "--checkpoint-every", "3", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "started from world-model base" in r.stdout and "LoRA rank 2" in r.stdout
    assert "copy-last" in r.stdout

    folder = ModelFolder(out)
    assert folder.read_config()["env_id"] == "NeuralBreakout-v0"
    lora_cfg = folder.component_config("denoiser_lora", DenoiserConfig)
    cfg = folder.component_config("denoiser", DenoiserConfig)
    assert lora_cfg.stage == "lora" and cfg.stage == "cond"
    assert (cfg.latent_channels, cfg.latent_height, cfg.latent_width) == (3, 13, 10)
    assert (cfg.context, cfg.frames_per_call, cfg.n_actions) == (2, 2, 4)
    assert cfg.metadata_dim == len(json.loads((breakout_cache / "info.json").read_text())
                                   ["metadata_names"])
    assert cfg.action_encoding == "onehot" and cfg.block_out_channels == (8, 16)
    weights = load_file(out / "denoiser.safetensors")
    assert not any("lora" in k or "base_layer" in k for k in weights)
    # stats computed from the train split were stored with the weights
    cache = LatentCache(breakout_cache)
    train = np.concatenate([cache.metadata[s:s + n] for s, n, t in cache.episodes if not t])
    np.testing.assert_allclose(weights["metadata_mean"].numpy(), train.mean(0), rtol=1e-4,
                               atol=1e-4)
    model = Denoiser.from_folder(folder)
    assert model.config == cfg
    for name in ("denoiser_lora", "denoiser"):
        result = json.loads((out / f"{name}_eval.json").read_text())
        assert result["test_windows"] > 0 and set(result["mse"]) == {"1", "2"}
        assert result["copy_last_mse"] > 0
    assert len(result["mse_per_frame"]["2"]) == 2 and result["lora_rank"] == 2


@pytest.fixture(scope="module")
def base_unet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local diffusers UNet folder standing in for a hub model."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("base") / "unet"
    UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
        cross_attention_dim=12, attention_head_dim=2, norm_num_groups=4,
    ).save_pretrained(path)
    return path


def test_killed_and_resumed_run_is_bit_identical(breakout_cache: Path, base_unet: Path,
                                                 tmp_path: Path, run_script) -> None:
    """LoRA on a diffusers base (the hardest path to resume: adapters made from the RNG)."""
    common = ["--cache", str(breakout_cache), "--stage", "lora", "--base", str(base_unet),
              "--lora-rank", "2", "--steps", "6", "--checkpoint-every", "2",
              "--eval-windows", "2", *TINY]
    r = run_script(SCRIPT, *common, "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "started from diffusers base" in r.stdout
    r = run_script(SCRIPT, *common, "--out", str(tmp_path / "b"), "--exit-after", "5")
    assert r.returncode == 3, r.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "train" / "denoiser_lora" / "checkpoint" / "state.json")
                      .read_text())["step"] == 4
    r = run_script(SCRIPT, *common, "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step 4" in r.stdout
    for rel in ("denoiser_lora.safetensors", "train/denoiser_lora/checkpoint/model.safetensors"):
        a, b = load_file(tmp_path / "a" / rel), load_file(tmp_path / "b" / rel)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), rel
    cfg = ModelFolder(tmp_path / "a").component_config("denoiser_lora", DenoiserConfig)
    assert cfg.token_dim == 12 and cfg.base_kwargs["cross_attention_dim"] == 12


def test_stopped_by_max_seconds_evaluates_the_steps_it_had(breakout_cache: Path, tmp_path: Path,
                                                           run_script) -> None:
    """A run cut by --max-seconds writes its eval with the steps reached, not --steps (so a
    resumable caller, e.g. training/ablations.sh, does not take it for finished)."""
    out = tmp_path / "wm"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", out, "--stage", "cond",
                   "--steps", "1000", "--max-seconds", "0.001", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stopping at step 1 of 1000" in r.stdout
    assert json.loads((out / "denoiser_eval.json").read_text())["steps"] == 1


def test_fine_tune_gains_metadata_maps_and_a_new_context_noise(breakout_cache: Path,
                                                               tmp_path: Path,
                                                               run_script) -> None:
    first = tmp_path / "first"
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", first, "--stage", "cond",
                   "--steps", "2", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not ModelFolder(first).component_config("denoiser", DenoiserConfig).metadata_maps
    committed = committed_copy(first, tmp_path / "committed")
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", committed, "--stage", "cond",
                   "--steps", "2", "--metadata-maps", "--context-noise-max", "0.9",
                   "--context-drop", "0.5", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "gains metadata maps" in r.stdout
    cfg = ModelFolder(committed).component_config("denoiser", DenoiserConfig)
    assert cfg.metadata_maps and cfg.context_noise_max == 0.9 and cfg.context_drop == 0.5
    model = Denoiser.from_folder(ModelFolder(committed))
    assert model.backbone.net.conv_in.in_channels == 3 * 3 + 2 + cfg.metadata_dim
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "x", "--stage",
                   "cond", "--steps", "2", "--metadata-maps", "--no-metadata", *TINY)
    assert r.returncode != 0 and "--position-maps need metadata" in r.stderr
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "y", "--stage",
                   "cond", "--steps", "2", "--context-drop", "2", *TINY)
    assert r.returncode != 0 and "--context-drop must be in [0, 1]" in r.stderr


@pytest.fixture(scope="module")
def pong_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random latent cache labelled as Pong's (its metadata names, 14 x 11 latents: 15
    frame pixels each way), two train episodes and one test episode."""
    from neuralgym.games import get_spec

    spec = get_spec("NeuralPong-v0")
    rng = np.random.default_rng(0)
    n, episodes = 30, 3
    lat = rng.normal(size=(n * episodes, 3, 14, 11)).astype(np.float32)
    meta = rng.uniform(0, 200, size=(n * episodes, len(spec.metadata))).round()
    acts = rng.integers(0, spec.n_actions, size=n * episodes)
    acts[n - 1::n] = -1
    rows = np.array([(i * n, n, int(i == episodes - 1)) for i in range(episodes)])
    root = tmp_path_factory.mktemp("pong_cache") / "cache"
    LatentCache.write(root, lat, meta, acts, rows,
                      {"env_id": spec.env_id, "metadata_names": list(spec.metadata_names)})
    return root


def test_position_maps_from_the_games_screen_positions(pong_cache: Path, breakout_cache: Path,
                                                       tmp_path: Path, run_script) -> None:
    from neuralgym.games import get_spec

    want = get_spec("NeuralPong-v0").screen_positions()
    assert [i for i, _, _ in want] == [0, 4, 5]  # player_y, ball_x, ball_y
    first = tmp_path / "first"
    r = run_script(SCRIPT, "--cache", pong_cache, "--out", first, "--stage", "cond",
                   "--steps", "2", "--metadata-maps", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    # its unfinished run cannot resume with maps it was started without
    r = run_script(SCRIPT, "--cache", pong_cache, "--out", first, "--stage", "cond",
                   "--steps", "4", "--position-maps", *TINY)
    assert r.returncode != 0 and "without --position-maps" in r.stderr
    committed = committed_copy(first, tmp_path / "committed")
    # a committed denoiser with metadata maps gains position maps, zero weights first
    r = run_script(SCRIPT, "--cache", pong_cache, "--out", committed, "--stage", "cond",
                   "--steps", "2", "--position-maps", "--metadata-maps", "--context-drop",
                   "0.5", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = ModelFolder(committed).component_config("denoiser", DenoiserConfig)
    assert "gains position maps (new" in r.stdout
    assert cfg.position_maps == want and cfg.latent_stride == 15 and cfg.metadata_maps
    model = Denoiser.from_folder(ModelFolder(committed))
    assert model.backbone.net.conv_in.in_channels == 3 * 3 + 2 + 8 + 3
    r = run_script(SCRIPT, "--cache", breakout_cache, "--out", tmp_path / "b", "--stage",
                   "cond", "--steps", "2", "--position-maps", *TINY)
    assert r.returncode != 0 and "gives no variable a screen position" in r.stderr


def test_to_tensors_carries_the_window_weights() -> None:
    """The training batch holds the windows' importance weights when the draw made them
    (--change-reweight), and no weight key otherwise (the plain loss)."""
    import importlib.util
    import sys

    from neuralgym.latents import Windows

    spec = importlib.util.spec_from_file_location("train_denoiser", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    w = Windows(context=np.zeros((2, 2, 4, 3, 3), np.float16),
                target=np.zeros((2, 1, 4, 3, 3), np.float16),
                metadata=np.zeros((2, 3, 5), np.float32), actions=np.zeros((2, 2), np.int64))
    assert "weight" not in module.to_tensors(w, torch.device("cpu"))
    w.weight = np.array([0.25, 2.0], np.float32)
    batch = module.to_tensors(w, torch.device("cpu"))
    assert torch.equal(batch["weight"], torch.tensor([0.25, 2.0]))
    assert batch["context"].dtype == torch.float32
