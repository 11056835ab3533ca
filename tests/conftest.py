"""Shared fixtures: a tiny recorded Breakout dataset (random policy, real ALE), tiny world
models, and the runner of the repository's scripts in subprocesses."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
import torch

from neuralgym import make_real
from neuralgym.data import Dataset, save_episode
from neuralgym.policies import RandomPolicy
from neuralgym.recording import record_episode


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test process: the 2-core machines run tests beside each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str | Path | Sequence[str | Path], *args: str | Path,
               timeout: float = 300, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """Run a repository script in a subprocess from the repository root, with one OpenMP
    thread (torch's threads crawl on a busy 2-core CPU) and `env` added to os.environ;
    output captured as text.

    `script`: a ``.py`` file runs with this interpreter; a ``.sh`` file with bash, this
    interpreter's folder first on PATH (the scripts call `python`); a sequence is the command's
    start as it stands (e.g. ``[sys.executable, "-m", "torch.distributed.run", ...]``).
    `check`: a non-zero exit fails the test with the exit status, stdout and stderr."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if isinstance(script, (str, Path)):
        if Path(script).suffix == ".sh":
            command = ["bash", str(script)]
            path = os.environ.get("PATH", "")
            full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
        else:
            command = [sys.executable, str(script)]
    else:
        command = [str(a) for a in script]
    full_env.update(env or {})
    proc = subprocess.run([*command, *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session", name="run_script")
def run_script_fixture():
    """`run_script(script, *args, timeout=300, env=None, check=False)` -> CompletedProcess:
    a repository script in a subprocess (see `run_script` above)."""
    return run_script


def load_script(path: str | Path, name: str) -> ModuleType:
    """The script at `path` (relative to the repository root) as module `name`, to call its
    functions in-process (training/ and benchmarks/ are not packages)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", name="load_script")
def load_script_fixture():
    """`load_script(path, name)` -> the repository script at `path` as module `name`."""
    return load_script


def record_dataset(root: Path, env_id: str, episodes: int, max_steps: int,
                   state_every: int = 10) -> Dataset:
    env = make_real(env_id).unwrapped
    policy = RandomPolicy(env.action_space.n)
    for k in range(episodes):
        ep = record_episode(env, policy, seed=k, max_steps=max_steps, state_every=state_every,
                            agent="random")
        save_episode(ep, root / "episodes" / f"random-{k:04d}")
    env.close()
    Dataset.reindex(root)
    return Dataset(root)


@pytest.fixture(scope="session")
def dataset_recorder():
    """`record_dataset(root, env_id, episodes, max_steps, state_every=10)` for tests that
    need a dataset of their own."""
    return record_dataset


@pytest.fixture(scope="session")
def breakout_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """6 Breakout episodes of at most 120 steps, states every 10 steps."""
    return record_dataset(tmp_path_factory.mktemp("breakout"), "NeuralBreakout-v0", 6, 120)


def build_tiny_world_model(root: Path, env_id: str = "NeuralBreakout-v0",
                           frames_per_call: int = 1, seed: int = 0) -> Path:
    """An untrained world-model folder with tiny components (random weights, real shapes)."""
    import torch

    from neuralgym.games import get_spec
    from neuralgym.model_folder import ModelFolder
    from neuralgym.models.denoiser import Denoiser, DenoiserConfig
    from neuralgym.models.metadata import MetadataConfig, MetadataPredictor
    from neuralgym.models.vae import FrameVAE, VAEConfig

    torch.manual_seed(seed)
    spec = get_spec(env_id)
    H, W, _ = spec.obs_shape
    M = len(spec.metadata)
    vae_cfg = VAEConfig(frame_height=H, frame_width=W, block_out_channels=(4, 8, 8),
                        norm_num_groups=4, latent_channels=4)
    vae = FrameVAE(vae_cfg)
    C, (h, w) = vae_cfg.latent_channels, vae_cfg.latent_hw
    meta_cfg = MetadataConfig(
        metadata_names=spec.metadata_names, kinds=tuple(v.kind for v in spec.metadata),
        num_classes=tuple(8 if v.kind == "categorical" else 0 for v in spec.metadata),
        mean=(0.0,) * M, std=(1.0,) * M, n_actions=spec.n_actions, latent_channels=C,
        latent_hw=(h, w), hidden=16, layers=1, window=4, action_dim=8, latent_width=4,
        latent_dim=16)
    den_cfg = DenoiserConfig(
        latent_channels=C, latent_height=h, latent_width=w, context=2,
        frames_per_call=frames_per_call, n_actions=spec.n_actions, metadata_dim=M,
        token_dim=16, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
        attention_head_dim=2, norm_num_groups=4)
    folder = ModelFolder(root)
    folder.save_component("vae", vae, vae_cfg)
    folder.save_component("metadata", MetadataPredictor(meta_cfg), meta_cfg)
    folder.save_component("denoiser", Denoiser(den_cfg), den_cfg)
    folder.update(env_id=env_id, sampler={"steps": 2})
    return root


@pytest.fixture(scope="session")
def world_model_builder():
    """`build_tiny_world_model(root, env_id, frames_per_call, seed)` for tests."""
    return build_tiny_world_model


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained Breakout world-model folder (T = 1)."""
    return build_tiny_world_model(tmp_path_factory.mktemp("wm") / "model")


def with_start_contexts(src: Path, dst: Path, dataset: Dataset, count: int = 6) -> Path:
    """A copy of world-model folder `src` with start contexts from `dataset`."""
    from neuralgym.start_contexts import contexts_from_dataset, save_start_contexts

    shutil.copytree(src, dst)
    save_start_contexts(dst, contexts_from_dataset(dataset, 2, count, "all"))
    return dst


@pytest.fixture(scope="session")
def dream_model_dir(tiny_world_model: Path, breakout_dataset: Dataset,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Breakout world model (T = 1) with start contexts: what the dream env needs."""
    return with_start_contexts(tiny_world_model, tmp_path_factory.mktemp("dream") / "wm",
                               breakout_dataset)


@pytest.fixture(scope="session")
def dream_multi_frame_dir(breakout_dataset: Dataset,
                          tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Breakout world model with T = 2 frames per call, with start contexts."""
    root = tmp_path_factory.mktemp("dream-t2")
    build_tiny_world_model(root / "raw", frames_per_call=2)
    return with_start_contexts(root / "raw", root / "wm", breakout_dataset)


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch):
    """`watch(env)` -> the list of batch sizes of env.model.step calls, filled as they happen."""

    def watch(env) -> list[int]:
        calls: list[int] = []
        real = env.model.step

        def step(state, actions, generator, decode=True, metadata=None):
            calls.append(actions.shape[0])
            return real(state, actions, generator, decode, metadata)

        monkeypatch.setattr(env.model, "step", step)
        return calls

    return watch
