"""training/add_metadata.py: a world-model folder trained before its game's spec gained a
metadata variable (here a tiny Breakout folder whose g_phi and denoiser lack "lives") gains it
from a latent cache of the game, and dreams as before."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from neuralgym.model_folder import ModelFolder
from neuralgym.models.denoiser import Denoiser, DenoiserConfig
from neuralgym.models.metadata import MetadataConfig, MetadataPredictor
from neuralgym.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "add_metadata.py"


def folder_without_lives(root: Path, world_model_builder) -> Path:
    """A tiny Breakout folder whose g_phi and denoiser read every variable but "lives"."""
    world_model_builder(root)
    folder = ModelFolder(root)
    g = folder.component_config("metadata", MetadataConfig)
    keep = [i for i, n in enumerate(g.metadata_names) if n != "lives"]
    g = replace(g, **{k: tuple(getattr(g, k)[i] for i in keep) for k in (
        "metadata_names", "kinds", "num_classes", "mean", "std")})
    torch.manual_seed(1)
    g_phi = MetadataPredictor(g)
    d = replace(folder.component_config("denoiser", DenoiserConfig), metadata_dim=len(keep))
    denoiser = Denoiser(d)
    with torch.no_grad():
        for p in [*g_phi.parameters(), *denoiser.parameters()]:
            p.add_(torch.randn_like(p) * 0.05)  # trained-looking weights, non-zero heads
    folder.save_component("metadata", g_phi, g)
    folder.save_component("denoiser", denoiser, d)
    return root


def test_adds_the_spec_variables_the_folder_lacks(tmp_path: Path, breakout_cache: Path,
                                                  world_model_builder, run_script) -> None:
    model = folder_without_lives(tmp_path / "wm", world_model_builder)
    before = ModelFolder(model)
    old_g = MetadataPredictor(before.component_config("metadata", MetadataConfig))
    before.load_component("metadata", old_g)
    old_d = Denoiser.from_folder(before, "denoiser")
    r = run_script(SCRIPT, "--model", model, "--cache", breakout_cache)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "added ['lives']" in r.stdout
    folder = ModelFolder(model)
    g = folder.component_config("metadata", MetadataConfig)
    assert g.metadata_names[-1] == "lives" and g.kinds[-1] == "categorical"
    assert g.num_classes[-1] == 6  # the game's 6 lives values (GameSpec values)
    assert folder.component_config("denoiser", DenoiserConfig).metadata_dim == 6
    assert not list(tmp_path.glob(".add-metadata-*"))  # the working copy is gone
    config = json.loads((model / "config.json").read_text())
    assert config["env_id"] == "NeuralBreakout-v0" and "vae" in config["components"]
    assert config["training"][-1].startswith("add_metadata.py: lives added to g_phi and "
                                             "denoiser at zero weights")

    # g_phi predicts the old variables as before and copies lives; the denoiser's new column
    # is zero (stored in float16 like an export: the weights are equal to float16 precision)
    g_phi = MetadataPredictor(g)
    folder.load_component("metadata", g_phi)
    torch.manual_seed(0)
    meta = torch.rand(3, 5, 6) * 4  # (B, L+1, M): lives 0..4
    meta[..., -1] = meta[..., -1].round()
    lat = torch.randn(3, 4, g.latent_channels, *g.latent_hw)
    acts = torch.randint(0, 4, (3, 4))
    with torch.no_grad():
        got = g_phi.eval().predict(meta, lat, acts)  # (B, 6)
        want = old_g.eval().predict(meta[..., :-1], lat, acts)  # (B, 5)
    torch.testing.assert_close(got[:, :-1], want, atol=0.05, rtol=0.01)
    assert torch.equal(got[:, -1], meta[:, -1, -1])
    den = Denoiser.from_folder(folder, "denoiser")
    w = den.metadata_encoder.mlp[0].weight  # (D, 6)
    assert torch.all(w[:, -1] == 0)
    torch.testing.assert_close(w[:, :-1], old_d.metadata_encoder.mlp[0].weight,
                               atol=1e-3, rtol=1e-3)
    WorldModel.from_pretrained(model)  # the folder loads as the game's model

    again = run_script(SCRIPT, "--model", model, "--cache", breakout_cache)
    assert again.returncode == 0 and "already reads every variable" in again.stdout


def test_a_cache_without_the_new_variables_is_refused(tmp_path: Path, breakout_cache: Path,
                                                      world_model_builder,
                                                      run_script) -> None:
    model = folder_without_lives(tmp_path / "wm", world_model_builder)
    cache = tmp_path / "cache"
    shutil.copytree(breakout_cache, cache)
    info = json.loads((cache / "info.json").read_text())
    info["metadata_names"] = info["metadata_names"][:-1] + ["hearts"]
    (cache / "info.json").write_text(json.dumps(info))
    r = run_script(SCRIPT, "--model", model, "--cache", cache)
    assert r.returncode != 0 and "record the game again" in r.stderr
    r = run_script(SCRIPT, "--model", tmp_path / "nope", "--cache", breakout_cache)
    assert r.returncode != 0 and "does not exist" in r.stderr
