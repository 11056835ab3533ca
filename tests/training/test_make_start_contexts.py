"""Start contexts: the file's round trip and errors, evenly spread steps, and the script."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralgym.data import Dataset
from neuralgym.start_contexts import (
    FILENAME,
    StartContexts,
    StartContextsError,
    contexts_from_dataset,
    load_start_contexts,
    save_start_contexts,
    spread_steps,
)

SCRIPT = "training/make_start_contexts.py"


@pytest.fixture(scope="module")
def make_start_contexts(load_script):
    """The script as a module, to call main(argv) in-process; it leaves autograd as it was."""
    module = load_script(SCRIPT, "make_start_contexts")
    yield module
    assert torch.is_grad_enabled()


def test_spread_steps_are_even_and_valid():
    rng = np.random.default_rng(0)
    picks = spread_steps([10, 0, 30], length=4, count=8, rng=rng)
    assert len(picks) == 8
    # episode 0 has steps 3..10 (8 of them), episode 1 none, episode 2 steps 3..30 (28)
    assert all(e in (0, 2) for e, _ in picks)
    assert all(3 <= t <= (10 if e == 0 else 30) for e, t in picks)
    flat = [t - 3 if e == 0 else 8 + t - 3 for e, t in picks]
    assert flat == sorted(flat) and len(set(flat)) == 8
    assert np.ptp(np.diff(flat)) <= 1  # evenly spaced: 36 positions / 8
    assert sum(e == 0 for e, _ in picks) == 2  # 8/36 of them in the 8-step episode
    assert len(spread_steps([3, 2], 2, 100, rng)) == 3 + 2  # every step t >= 1 when too few
    assert spread_steps([1], 5, 10, rng) == []
    assert spread_steps([50], 2, 5, np.random.default_rng(1)) != spread_steps(
        [50], 2, 5, np.random.default_rng(2))  # the seed moves the offset


def test_round_trip_and_errors(breakout_dataset: Dataset, tmp_path: Path):
    contexts = contexts_from_dataset(breakout_dataset, 3, 5, "all", seed=0)
    assert contexts.frames.shape == (5, 3, 210, 160, 3) and contexts.frames.dtype == np.uint8
    assert contexts.metadata.shape == (5, 3, 6) and contexts.metadata.dtype == np.float32
    assert contexts.actions.shape == (5, 2) and contexts.actions.dtype == np.int64
    # each context is a real stretch of an episode: frames, metadata and actions aligned
    name, t = contexts.source.split("steps=")[1].split(",")[0].split(":")
    ep = breakout_dataset.load(name)
    t = int(t)
    np.testing.assert_array_equal(contexts.frames[0], ep.frames[t - 2 : t + 1])
    np.testing.assert_array_equal(contexts.metadata[0], ep.metadata[t - 2 : t + 1])
    np.testing.assert_array_equal(contexts.actions[0], ep.actions[t - 2 : t])

    path = save_start_contexts(tmp_path, contexts)
    assert path == tmp_path / FILENAME
    assert [p.name for p in tmp_path.iterdir()] == [FILENAME]  # no temporary left behind
    back = load_start_contexts(tmp_path)
    for name in ("frames", "metadata", "actions"):
        np.testing.assert_array_equal(getattr(back, name), getattr(contexts, name))
    assert back.env_id == "NeuralBreakout-v0" and back.metadata_names[-1] == "lives"
    assert back.source == contexts.source and len(back) == 5 and back.length == 3

    with pytest.raises(StartContextsError, match="missing.*make_start_contexts.py"):
        load_start_contexts(tmp_path / "nowhere")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(StartContextsError, match="corrupt or truncated"):
        load_start_contexts(tmp_path)
    bad = StartContexts(contexts.frames, contexts.metadata, contexts.actions[:, :1])
    with pytest.raises(ValueError, match="actions must be \\(5, 2\\) int64"):
        save_start_contexts(tmp_path, bad)
    with pytest.raises(ValueError, match="frames must be"):
        save_start_contexts(tmp_path, StartContexts(contexts.frames.astype(np.float32),
                                                    contexts.metadata, contexts.actions))


def test_script_writes_them_into_the_model_folder(tiny_world_model: Path,
                                                  breakout_dataset: Dataset, tmp_path: Path,
                                                  world_model_builder, run_script,
                                                  make_start_contexts):
    model = tmp_path / "wm"
    shutil.copytree(tiny_world_model, model)
    proc = run_script(SCRIPT, "--data", breakout_dataset.root, "--model", model, "--count", "5",
                      "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 5 start contexts of 2 frames" in proc.stdout
    contexts = load_start_contexts(model)
    assert contexts.frames.shape[:2] == (5, 2)  # L = the model's context
    assert "split=train" in contexts.source  # the train split by default
    train = {r.name for r in breakout_dataset.split("train")}
    assert all(s.split(":")[0] in train for s in contexts.source.split("steps=")[1].split(","))

    make_start_contexts.main(["--data", str(breakout_dataset.root), "--model", str(model),
                              "--count", "3", "--length", "4", "--split", "all"])
    assert load_start_contexts(model).frames.shape[:2] == (3, 4)
    with pytest.raises(SystemExit, match="shorter than the model's context"):
        make_start_contexts.main(["--data", str(breakout_dataset.root), "--model", str(model),
                                  "--length", "1"])
    pong = world_model_builder(tmp_path / "pong", env_id="NeuralPong-v0")
    with pytest.raises(SystemExit, match="model of NeuralPong-v0.*is NeuralBreakout-v0"):
        make_start_contexts.main(["--data", str(breakout_dataset.root), "--model", str(pong)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_start_contexts.main(["--data", str(tmp_path / "no-data"), "--model", str(model)])
    with pytest.raises(SystemExit):
        make_start_contexts.main(["--help"])
