"""training/train_vae.py end to end on the tiny Breakout dataset: outputs, exact resume after a
kill, fine-tuning from a folder's weights, clear errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from neuralgym.data import Dataset
from neuralgym.models.vae import FrameVAE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "train_vae.py"
TINY = ["--block-out-channels", "2", "4", "4", "--norm-num-groups", "2", "--latent-channels",
        "4", "--batch-size", "2", "--warmup", "2", "--eval-frames", "4", "--norm-frames", "4",
        "--device", "cpu"]


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].equal(tb[k]), k


@pytest.fixture(scope="module")
def uninterrupted(breakout_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory,
                  run_script) -> Path:
    out = tmp_path_factory.mktemp("vae") / "model"
    run_script(SCRIPT, "--data", breakout_dataset.root, "--out", out, "--steps", "6",
               "--checkpoint-every", "3", *TINY, check=True)
    return out


def test_end_to_end(uninterrupted: Path, breakout_dataset: Dataset) -> None:
    config = json.loads((uninterrupted / "config.json").read_text())
    assert config["env_id"] == "NeuralBreakout-v0"
    vae_cfg = config["components"]["vae"]
    assert vae_cfg["frame_height"] == 210 and vae_cfg["frame_width"] == 160
    assert len(vae_cfg["latent_shift"]) == len(vae_cfg["latent_scale"]) == 4
    result = json.loads((uninterrupted / "vae_eval.json").read_text())
    assert result["step"] == 6 and result["split"] == "test" and result["n_frames"] == 4
    assert 0 < result["mse"] < 255**2 and np.isfinite(result["psnr_of_mean_mse"])
    state = json.loads((uninterrupted / "train" / "vae" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6
    vae = FrameVAE.from_folder(uninterrupted)
    frames = breakout_dataset.load(breakout_dataset.split("test")[0]).frames[:2]
    assert vae.decode(vae.encode(frames)).shape == (2, 210, 160, 3)


def test_killed_and_resumed_is_bit_identical(uninterrupted: Path, breakout_dataset: Dataset,
                                            tmp_path: Path, run_script) -> None:
    out = tmp_path / "model"
    args = ["--data", str(breakout_dataset.root), "--out", str(out), "--steps", "6",
            "--checkpoint-every", "3", *TINY]
    proc = run_script(SCRIPT, *args, "--exit-after", "5")
    assert proc.returncode == 3, proc.stderr
    state = json.loads((out / "train" / "vae" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3  # the kill at step 5 saved nothing
    proc = run_script(SCRIPT, *args, check=True)
    assert "resumed at step 3" in proc.stdout
    assert_same_tensors(out / "vae.safetensors", uninterrupted / "vae.safetensors")
    assert_same_tensors(out / "train/vae/checkpoint/model.safetensors",
                        uninterrupted / "train/vae/checkpoint/model.safetensors")
    a = json.loads((out / "config.json").read_text())["components"]["vae"]
    b = json.loads((uninterrupted / "config.json").read_text())["components"]["vae"]
    assert a == b  # normalisation included
    # a finished run has nothing left to do
    assert "nothing to do" in run_script(SCRIPT, *args, check=True).stdout


def test_finetunes_from_folder_weights(uninterrupted: Path, breakout_dataset: Dataset,
                                       tmp_path: Path, run_script) -> None:
    """A folder with a vae and no checkpoint: training starts from its weights and keeps its
    architecture (a different --block-out-channels is ignored); lr 0 leaves them unchanged."""
    out = tmp_path / "model"
    out.mkdir()
    for name in ("config.json", "vae.safetensors"):
        shutil.copy(uninterrupted / name, out / name)
    proc = run_script(SCRIPT, "--data", breakout_dataset.root, "--out", out, "--steps", "1",
                      "--lr", "0", *TINY, "--block-out-channels", "4", "4", check=True)
    assert "fine-tuning" in proc.stdout
    assert_same_tensors(out / "vae.safetensors", uninterrupted / "vae.safetensors")


def test_init_from_another_games_vae(uninterrupted: Path, dataset_recorder, tmp_path: Path,
                                     run_script) -> None:
    """--init-from: a new Pong VAE starts from a Breakout folder's (same 210x160 frames): its
    weights and architecture (lr 0 leaves them unchanged), the new folder is Pong's; a folder
    without a vae is a clear error."""
    pong = dataset_recorder(tmp_path / "pong", "NeuralPong-v0", 3, 40)
    out = tmp_path / "model"
    proc = run_script(SCRIPT, "--data", pong.root, "--out", out, "--steps", "1", "--lr", "0",
                      "--init-from", uninterrupted, *TINY, "--block-out-channels", "4", "4",
                      check=True)
    assert f"fine-tuning the vae in {uninterrupted}" in proc.stdout
    assert_same_tensors(out / "vae.safetensors", uninterrupted / "vae.safetensors")
    assert json.loads((out / "config.json").read_text())["env_id"] == "NeuralPong-v0"
    proc = run_script(SCRIPT, "--data", pong.root, "--out", tmp_path / "m2", "--steps", "1",
                      "--init-from", tmp_path / "nowhere", *TINY)
    assert proc.returncode != 0 and "nowhere does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_and_clear_errors(tmp_path: Path, run_script) -> None:
    proc = run_script(SCRIPT, "--help", check=True)
    assert "--bright-weight" in proc.stdout and "--exit-after" in proc.stdout
    proc = run_script(SCRIPT, "--data", tmp_path / "nowhere", "--out", tmp_path / "m", *TINY)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runs_under_torchrun_on_two_cpu_processes(breakout_dataset: Dataset,
                                                  tmp_path: Path, run_script) -> None:
    """The DDP code path (gloo on the CPU): two ranks train one model; rank 0 writes it."""
    out = tmp_path / "model"
    proc = run_script(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29517", SCRIPT], "--data", breakout_dataset.root,
        "--out", out, "--steps", "3", "--checkpoint-every", "3", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "train" / "vae" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3
    assert FrameVAE.from_folder(out).config.frame_height == 210
