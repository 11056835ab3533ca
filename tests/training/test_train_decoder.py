"""training/train_decoder.py on the tiny Breakout dataset: a fast decoder for a tiny VAE's
latents, its eval beside the VAE's floor, the world model decoding with it, exact resume
after a kill, clear errors; and FrameDecoder itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neuralgym.data import Dataset
from neuralgym.model_folder import ModelFolder
from neuralgym.models.decoder import FrameDecoder, decoder_config
from neuralgym.models.vae import FrameVAE, VAEConfig
from neuralgym.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "train_decoder.py"
TINY = ["--channels", "2", "2", "4", "--norm-num-groups", "2", "--layers-per-block", "0",
        "--batch-size", "2", "--warmup", "1", "--eval-frames", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def vae_folder(world_model_builder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny complete world model (vae, metadata, denoiser) to add a decoder to."""
    return world_model_builder(tmp_path_factory.mktemp("decoder") / "wm")


@pytest.fixture(scope="module")
def trained(vae_folder: Path, breakout_dataset: Dataset,
            tmp_path_factory: pytest.TempPathFactory, run_script) -> Path:
    model = tmp_path_factory.mktemp("trained") / "wm"
    shutil.copytree(vae_folder, model)
    run_script(SCRIPT, "--data", breakout_dataset.root, "--model", model, "--steps", "4",
               "--checkpoint-every", "2", *TINY, check=True)
    return model


def test_writes_the_component_and_its_floor(trained: Path) -> None:
    config = json.loads((trained / "config.json").read_text())["components"]
    dec, vae = config["decoder"], config["vae"]
    assert dec["block_out_channels"] == [2, 2, 4] and dec["layers_per_block"] == 0
    for key in ("frame_height", "frame_width", "latent_channels", "latent_shift",
                "latent_scale", "pad_multiple"):
        assert dec[key] == vae[key], key
    result = json.loads((trained / "decoder_eval.json").read_text())
    assert result["step"] == 4 and result["split"] == "test" and result["n_frames"] == 4
    assert 0 < result["mse"] < 255**2 and 0 < result["vae_floor"]["mse"] < 255**2


def test_the_world_model_decodes_with_it(trained: Path, breakout_dataset: Dataset) -> None:
    fast = WorldModel.from_pretrained(trained)
    assert isinstance(fast.decoder, FrameDecoder)
    assert WorldModel.from_pretrained(trained, decoder="fast").decoder.config.block_out_channels \
        == (2, 2, 4)
    own = WorldModel.from_pretrained(trained, decoder="vae")
    assert own.decoder is own.vae
    ep = breakout_dataset.load(breakout_dataset.split("all")[0])
    frames = np.array(ep.frames[None, :4])
    args = (frames, np.array(ep.metadata[None, :4]), np.array(ep.actions[None, :3]),
            np.array(ep.actions[None, 3:5]))
    a, b = fast.rollout(*args, seed=0), own.rollout(*args, seed=0)
    assert a.shape == b.shape == (1, 2, 210, 160, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, b)  # two different decoders of the same latents
    # save_pretrained keeps it
    fast.save_pretrained(trained.parent / "copy")
    assert ModelFolder(trained.parent / "copy").has("decoder")


def test_the_folder_chooses_the_default_decoder(trained: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(trained, tmp_path / "wm"))
    ModelFolder(folder).update(decode_with="vae")  # a fast decoder kept, but not the default
    auto = WorldModel.from_pretrained(folder)
    assert auto.decoder is auto.vae and auto.decoder_kind == "vae"
    assert WorldModel.from_pretrained(folder, decoder="fast").decoder_kind == "fast"
    ModelFolder(folder).update(decode_with="sharp")
    with pytest.raises(Exception, match="decode_with must be 'vae' or 'fast', got 'sharp'"):
        WorldModel.from_pretrained(folder)
    ModelFolder(folder).update(decode_with="fast")
    assert WorldModel.from_pretrained(folder).decoder_kind == "fast"
    (folder / "decoder.safetensors").unlink()
    config = json.loads((folder / "config.json").read_text())
    del config["components"]["decoder"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="no fast decoder: train one with"):
        WorldModel.from_pretrained(folder)


def test_killed_and_resumed_is_bit_identical(trained: Path, vae_folder: Path,
                                            breakout_dataset: Dataset, tmp_path: Path,
                                            run_script) -> None:
    model = tmp_path / "wm"
    shutil.copytree(vae_folder, model)
    args = ["--data", breakout_dataset.root, "--model", model, "--steps", "4",
            "--checkpoint-every", "2", *TINY]
    killed = run_script(SCRIPT, *args, "--exit-after", "3")
    assert killed.returncode == 3
    resumed = run_script(SCRIPT, *args, check=True)
    assert "resumed at step 2" in resumed.stdout
    a, b = load_file(trained / "decoder.safetensors"), load_file(model / "decoder.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_clear_errors(vae_folder: Path, breakout_dataset: Dataset, tmp_path: Path,
                      run_script) -> None:
    empty = tmp_path / "empty"
    r = run_script(SCRIPT, "--data", breakout_dataset.root, "--model", empty, *TINY)
    assert r.returncode != 0 and "has no trained vae" in r.stderr and "Traceback" not in r.stderr
    model = tmp_path / "wm"
    shutil.copytree(vae_folder, model)
    r = run_script(SCRIPT, "--data", breakout_dataset.root, "--model", model, "--channels", "2",
                   "4", "--norm-num-groups", "2", "--device", "cpu")
    assert r.returncode != 0 and "needs 3 levels like the VAE" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(Exception, match="no fast decoder: train one with"):
        WorldModel.from_pretrained(model, decoder="fast")


def test_frame_decoder_matches_the_vae_interface() -> None:
    torch.manual_seed(0)
    vae = FrameVAE(VAEConfig(210, 160, block_out_channels=(2, 4, 4), latent_channels=4,
                             norm_num_groups=2, latent_shift=[0.5] * 4, latent_scale=[2.0] * 4))
    config = decoder_config(vae.config, (2, 2, 2), 0, 2)
    assert config.latent_shape == vae.config.latent_shape == (4, 54, 40)
    decoder = FrameDecoder(config).eval()
    z = torch.randn(3, 4, 54, 40)
    frames = decoder.decode(z)
    assert frames.shape == (3, 210, 160, 3) and frames.dtype == torch.uint8
    # normalisation: normalised latents decode like their unnormalised values
    raw = decoder.decode(z / 2.0 + 0.5, normalized=False)
    assert torch.equal(frames, raw)
    with pytest.raises(ValueError, match="latents must be"):
        decoder.decode(torch.randn(1, 4, 10, 10))
    # fewer FLOPs: far fewer parameters than the VAE's decoder of the default widths
    big = FrameVAE(VAEConfig(210, 160))
    small = FrameDecoder(decoder_config(big.config, (16, 32, 64), 0, 16))
    n_small = sum(p.numel() for p in small.parameters())
    n_big = sum(p.numel() for p in big.vae.decoder.parameters())
    assert n_small < n_big / 4
