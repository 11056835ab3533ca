"""The composed world model: loading a folder, dreaming, determinism, the benchmark path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralgym.data import Dataset
from neuralgym.model_folder import ModelFolderError
from neuralgym.predictors import CopyLast, NoModelError, load_predictor
from neuralgym.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[1]





def context_of(dataset: Dataset, K: int, B: int = 2):
    ep = dataset.load(dataset.episodes[0])
    t = K + 3
    frames = np.stack([ep.frames[t - K + 1 : t + 1]] * B)  # (B, K, H, W, 3)
    meta = np.stack([ep.metadata[t - K + 1 : t + 1]] * B)
    past = np.stack([ep.actions[t - K + 1 : t]] * B)
    future = np.stack([ep.actions[t : t + 5]] * B)
    return frames, np.asarray(meta), np.asarray(past), np.asarray(future)


def test_rollout_shapes_and_determinism(tiny_world_model: Path, breakout_dataset: Dataset):
    model = WorldModel.from_pretrained(tiny_world_model)
    assert model.steps == 2 and model.context == 2
    args = context_of(breakout_dataset, model.context)
    a = model.rollout(*args, seed=3)
    assert a.shape == (2, 5, 210, 160, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, model.rollout(*args, seed=3))  # same seed, same frames
    assert (a != model.rollout(*args, seed=4)).any()  # the seed matters


def test_save_pretrained_round_trips_exactly(tiny_world_model: Path, tmp_path: Path,
                                             breakout_dataset: Dataset):
    model = WorldModel.from_pretrained(tiny_world_model, steps=1)
    model.save_pretrained(tmp_path / "copy")
    again = WorldModel.from_pretrained(tmp_path / "copy")
    assert again.steps == 1 and again.env_id == "NeuralBreakout-v0"
    for a, b in [(model.vae, again.vae), (model.g, again.g), (model.denoiser, again.denoiser)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    args = context_of(breakout_dataset, model.context, B=1)
    np.testing.assert_array_equal(model.rollout(*args, seed=0), again.rollout(*args, seed=0))


def test_context_noise_comes_from_the_folder_and_changes_the_dream(
        tiny_world_model: Path, tmp_path: Path, breakout_dataset: Dataset):
    model = WorldModel.from_pretrained(tiny_world_model)
    assert model.context_noise == 0.0
    args = context_of(breakout_dataset, model.context, B=1)
    clean = model.rollout(*args, seed=0)
    model.context_noise = 0.8
    model.save_pretrained(tmp_path / "noisy")
    config = json.loads((tmp_path / "noisy" / "config.json").read_text())
    assert config["sampler"] == {"steps": 2, "context_noise": 0.8}
    again = WorldModel.from_pretrained(tmp_path / "noisy")
    assert again.context_noise == 0.8
    noisy = again.rollout(*args, seed=0)
    np.testing.assert_array_equal(noisy, again.rollout(*args, seed=0))  # still seeded
    assert (noisy != clean).any()
    again.context_noise = -1.0  # no context: its denoiser was not trained for that
    again.save_pretrained(tmp_path / "none")
    with pytest.raises(ModelFolderError, match="context dropout"):
        WorldModel.from_pretrained(tmp_path / "none")


def test_steps_keep_a_bounded_history(tiny_world_model: Path, breakout_dataset: Dataset):
    model = WorldModel.from_pretrained(tiny_world_model)
    frames, meta, past, future = context_of(breakout_dataset, 6)
    state = model.start(frames, meta, past)
    assert state.latents.shape[1] == min(6, model.history)
    gen = torch.Generator().manual_seed(0)
    for t in range(7):
        out, m, state = model.step(state, torch.as_tensor(future[:, t % 5 : t % 5 + 1]), gen)
        assert out.shape == (2, 1, 210, 160, 3) and m.shape == (2, 1, 6)
        assert state.latents.shape[1] <= model.history
        assert state.actions.shape[1] == state.latents.shape[1] - 1
    with pytest.raises(ValueError, match="frames per call"):
        model.step(state, torch.zeros(2, 2, dtype=torch.int64), gen)


def test_multi_frame_model_serves_any_horizon(tmp_path: Path, breakout_dataset: Dataset,
                                              world_model_builder):
    model = WorldModel.from_pretrained(world_model_builder(tmp_path / "m", frames_per_call=2))
    frames, meta, past, future = context_of(breakout_dataset, model.context)
    out = model.rollout(frames, meta, past, future, seed=0)  # 5 steps with T = 2: 3 calls
    assert out.shape == (2, 5, 210, 160, 3)


@pytest.mark.parametrize("frames_per_call", [1, 2])
def test_rollout_with_metadata_is_what_step_dreams(frames_per_call: int, tiny_world_model: Path,
                                                   tmp_path: Path, breakout_dataset: Dataset,
                                                   world_model_builder):
    """The metadata are step()'s, call after call, cut to the horizon like the frames; and
    rollout's frames are the same dream's frames."""
    path = tiny_world_model if frames_per_call == 1 else world_model_builder(
        tmp_path / "m", frames_per_call=frames_per_call)
    model = WorldModel.from_pretrained(path)
    torch.manual_seed(0)  # an untrained g_phi copies m_t: give it weights that move them
    for p in model.g.parameters():
        p.data.normal_(0, 0.1)
    frames, meta, past, future = context_of(breakout_dataset, model.context)  # L = 5
    got_frames, got_meta = model.rollout_with_metadata(frames, meta, past, future, seed=3)
    assert got_frames.shape == (2, 5, 210, 160, 3) and got_frames.dtype == np.uint8
    assert got_meta.shape == (2, 5, 6) and got_meta.dtype == np.float32
    state = model.start(frames, meta, past)  # the same dream, call by call
    gen = torch.Generator().manual_seed(3)
    acts = torch.as_tensor(np.concatenate([future, future[:, -1:]], 1))  # 6: whole calls
    want_frames, want_meta = [], []
    for i in range(0, 6, frames_per_call):
        f, m, state = model.step(state, acts[:, i : i + frames_per_call], gen)
        want_frames.append(f.numpy())
        want_meta.append(m.numpy())
    np.testing.assert_array_equal(got_frames, np.concatenate(want_frames, 1)[:, :5])
    np.testing.assert_array_equal(got_meta, np.concatenate(want_meta, 1)[:, :5])
    assert not np.allclose(got_meta, meta[:, -1:])  # g_phi's, not m_t held
    np.testing.assert_array_equal(model.rollout(frames, meta, past, future, seed=3), got_frames)


def test_copy_last_holds_the_last_frame_and_metadata(breakout_dataset: Dataset):
    frames, meta, past, future = context_of(breakout_dataset, 3)
    out, m = CopyLast().rollout_with_metadata(frames, meta, past, future, seed=0)
    assert out.shape == (2, 5, 210, 160, 3) and m.shape == (2, 5, 6) and m.dtype == np.float32
    assert (out == frames[:, -1:]).all() and (m == meta[:, -1:]).all()
    np.testing.assert_array_equal(CopyLast().rollout(frames, meta, past, future, seed=0), out)


def test_load_predictor_and_folder_errors(tiny_world_model: Path, tmp_path: Path):
    assert isinstance(load_predictor("copy-last", "NeuralBreakout-v0"), CopyLast)
    assert isinstance(load_predictor(str(tiny_world_model), "NeuralBreakout-v0"), WorldModel)
    with pytest.raises(NoModelError, match="NeuralBreakout-v0, not NeuralPong-v0"):
        load_predictor(str(tiny_world_model), "NeuralPong-v0")
    with pytest.raises(NoModelError, match="neither"):
        load_predictor(str(tmp_path / "nope"), "NeuralBreakout-v0")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_world_model, broken)
    (broken / "metadata.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFolderError, match="metadata.safetensors"):
        WorldModel.from_pretrained(broken)
    (broken / "metadata.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="metadata.safetensors is missing"):
        WorldModel.from_pretrained(broken)
    config = json.loads((broken / "config.json").read_text())
    config["components"]["denoiser"]["context"] = 3  # weights no longer match the config
    (broken / "config.json").write_text(json.dumps(config))
    shutil.copy(tiny_world_model / "metadata.safetensors", broken)
    with pytest.raises(ModelFolderError, match="denoiser.safetensors does not match"):
        WorldModel.from_pretrained(broken)


def test_world_model_runs_through_the_paired_benchmark(tiny_world_model: Path,
                                                       breakout_dataset: Dataset,
                                                       tmp_path: Path):
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/paired_rollout.py", "--env", "NeuralBreakout-v0",
         "--data", str(breakout_dataset.root), "--split", "all", "--predictor",
         str(tiny_world_model), "--episodes", "2", "--starts-per-episode", "1",
         "--horizons", "1", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert set(report["predictors"]) == {"copy-last", str(tiny_world_model)}
    for name in report["predictors"]:
        assert report["predictors"][name]["horizons"]["1"]["mse"]["mean"] >= 0
        block = report["predictors"][name]["metadata"]
        assert list(block["horizons"]) == ["1", "2"]
        assert block["horizons"]["2"]["reward_sum"]["abs_error"]["n"] == 2
    assert "| predictor | h | reward sum: real |" in proc.stdout


def pong_dream(world_model_builder, tmp_path: Path, batch: int, score: float):
    """An untrained tiny Pong world model (score classes 0..7), the columns of its two scores,
    and `batch` dreams started from black frames with every variable 40 and both scores
    `score`."""
    model = WorldModel.from_pretrained(world_model_builder(tmp_path / "pong", "NeuralPong-v0"))
    names = model.g.config.metadata_names
    scores = [names.index("enemy_score"), names.index("player_score")]
    K = model.context
    meta = np.full((batch, K, len(names)), 40.0, np.float32)
    meta[..., scores] = score
    state = model.start(np.zeros((batch, K, 210, 160, 3), np.uint8), meta,
                        np.zeros((batch, K - 1), np.int64))
    return model, scores, state


def test_dreamt_metadata_keep_to_the_game_step_limits(world_model_builder, tmp_path: Path):
    """Pong's scores only go up, by at most a point a step: an untrained g_phi, whose score
    classes are 0..7, predicts from a score of 10 only 10 or 11 with the game's limits, and
    something else without them."""
    model, scores, state = pong_dream(world_model_builder, tmp_path, batch=8, score=10.0)
    actions = torch.arange(8)[:, None] % 6
    held = model.predict_metadata(state, actions)[:, 0, scores]  # (B, 2)
    assert ((held == 10) | (held == 11)).all()
    model.step_limits = None
    free = model.predict_metadata(state, actions)[:, 0, scores]
    assert (free < 10).all()  # the classes cannot reach 10: what the limits corrected


def test_sampled_metadata_follow_the_generator(world_model_builder, tmp_path: Path):
    """With `sample_metadata`, g_phi's classes are drawn with the sampler's generator: the
    same seed gives the same draws, and the untrained g_phi's spread-out classes make draws
    that differ from the argmax; without it (the default) the generator changes nothing."""
    model, scores, state = pong_dream(world_model_builder, tmp_path, batch=64, score=3.0)
    actions = torch.zeros(64, 1, dtype=torch.int64)
    model.step_limits = None  # the draws as g_phi makes them

    def draw(seed: int | None) -> torch.Tensor:
        g = None if seed is None else torch.Generator().manual_seed(seed)
        return model.predict_metadata(state, actions, g)[:, 0, scores]

    argmax = draw(None)
    assert torch.equal(draw(0), argmax)  # sample_metadata off: the generator is not read
    model.sample_metadata = True
    a, b, c = draw(0), draw(0), draw(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, argmax)  # draws, not the most likely class
    assert torch.equal(draw(None), argmax)  # no generator: the most likely class


def test_position_maps_place_what_the_folder_dreams(tiny_world_model: Path, tmp_path: Path,
                                                    breakout_dataset: Dataset):
    """A folder whose denoiser reads position maps loads, keeps them through save_pretrained,
    and the stripes reach its frames: the same seed and metadata give the same frame, the
    stripes' input weights set to zero another."""
    from neuralgym.model_folder import ModelFolder
    from neuralgym.models.denoiser import Denoiser

    folder = tmp_path / "positions"
    shutil.copytree(tiny_world_model, folder)
    den = Denoiser.from_folder(ModelFolder(folder)).with_input_maps(
        position_maps=((0, "x", 0.0), (1, "y", -12.0)), latent_stride=8)
    torch.manual_seed(0)
    with torch.no_grad():  # the new input weights away from zero: the stripes reach the frame
        den.backbone.net.conv_in.weight[:, -2:].normal_(0, 1.0)
    ModelFolder(folder).save_component("denoiser", den, den.config)
    model = WorldModel.from_pretrained(folder)
    assert model.denoiser.config.position_maps == ((0, "x", 0.0), (1, "y", -12.0))
    model.save_pretrained(tmp_path / "again")
    assert WorldModel.from_pretrained(tmp_path / "again").denoiser.config.position_maps == (
        (0, "x", 0.0), (1, "y", -12.0))
    frames, meta, past, future = context_of(breakout_dataset, model.context, B=1)
    state = model.start(frames, meta, past)
    nxt = torch.as_tensor(meta[:, -1:], dtype=torch.float32)  # (1, 1, M)
    acts = torch.as_tensor(future[:, :1])

    def frame(m: torch.Tensor) -> np.ndarray:
        out, _, _ = model.step(state, acts, torch.Generator().manual_seed(0), metadata=m)
        return out.numpy()

    with_stripes = frame(nxt)
    np.testing.assert_array_equal(frame(nxt), with_stripes)
    with torch.no_grad():
        model.denoiser.backbone.net.conv_in.weight[:, -2:] = 0
    assert (frame(nxt) != with_stripes).any()
