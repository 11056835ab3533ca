"""What every training script shares: device and DDP set-up, bf16 autocast, the learning-rate
schedule, and atomic, exactly resumable checkpoints (safetensors + JSON, no pickles).

One code path for the CPU, one GPU and several GPUs: run a script with `python` or with
`torchrun --nproc_per_node N`; `setup_runtime` reads torchrun's environment variables.
Batches are drawn with a generator seeded by (seed, step, rank), so a run killed and resumed
from its checkpoint draws the same batches as one that never stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from neuralgym.data import Dataset, FrameSampler

CHECKPOINT = "checkpoint"


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA; nothing on the CPU (exact, and what tests compare)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap(self, model: nn.Module, compile: bool = False) -> nn.Module:
        """DDP when distributed, `torch.compile` when asked (CUDA only)."""
        model = model.to(self.device)
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if compile and self.device.type == "cuda":
            model = torch.compile(model)  # type: ignore[assignment]
        return model

    def rng(self, seed: int, step: int) -> np.random.Generator:
        """The batch sampler of a step: the same batches after a resume, another per rank."""
        return np.random.default_rng([seed, step, self.rank])

    def generator(self, seed: int, step: int) -> torch.Generator:
        """The torch generator of a step (noise, diffusion times): the same after a resume."""
        return torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + self.rank)

    def mean(self, value: float) -> float:
        """Average a number over ranks (for logging)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup_runtime(device: str | None = None) -> Runtime:
    """Pick the device (CUDA if present unless `device` says otherwise) and join torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(device=dev, rank=rank, world_size=world_size)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP and/or torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int,
                  floor: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then cosine decay to `floor` x the peak at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(kw_only=True)
class FrameTrainingArgs:
    """The optimisation flags of the frame models' training scripts (the VAE, the fast
    decoder); each script's `Args` adds its data, folder and model flags."""

    steps: int = field(default=2000, metadata={"help": "total optimiser steps"})
    batch_size: int = field(default=64, metadata={"help": "frames per step (over all ranks)"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=100, metadata={"help": "linear warm-up steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm"})
    checkpoint_every: int = field(default=500, metadata={
        "help": "steps between checkpoints (checkpoint, folder component, eval)"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, batches, noise"})
    device: str | None = field(default=None, metadata={"help": "cuda or cpu (default: cuda if "
                                                                 "available)"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA)"})
    exit_after: int | None = field(default=None, metadata={
        "help": "testing: exit with status 3 right after this step, saving nothing"})
    eval_frames: int = field(default=256, metadata={"help": "test frames for the eval"})


def frame_splits(data: str) -> tuple[Dataset, FrameSampler, FrameSampler, str]:
    """A dataset's train frames and its test frames, for the frame models (VAE, decoder):
    (dataset, train, test, name of the eval split). Without test episodes the eval uses
    train frames, with a warning. Missing or empty data exits with the reason."""
    try:
        dataset = Dataset(data)
        train = FrameSampler(dataset, "train")
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    try:
        return dataset, train, FrameSampler(dataset, "test"), "test"
    except ValueError:
        print(f"warning: {data} has no test episodes; the eval uses train frames")
        return dataset, train, train, "train"


B = TypeVar("B")


def prefetch(make: Callable[[int], B], steps: Iterable[int], depth: int = 2
             ) -> Iterator[tuple[int, B]]:
    """(step, make(step)) for each step in order, the next `depth` made ahead in threads, so a
    batch's CPU work overlaps the step before it. `make` must depend on its step alone (the
    per-step generators of `Runtime.rng`): the batches are then those of a plain loop."""
    upcoming = iter(steps)
    with ThreadPoolExecutor(max_workers=depth) as pool:
        pending: deque[tuple[int, Future[B]]] = deque()
        for step in upcoming:
            pending.append((step, pool.submit(make, step)))
            if len(pending) == depth:
                break
        while pending:
            step, made = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, pool.submit(make, following)))
            yield step, made.result()


def train_steps(model: nn.Module, params: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, runtime: Runtime, *,
                start: int, steps: int, batch: Callable[[int], dict[str, torch.Tensor]],
                grad_clip: float, checkpoint_every: int, checkpoint: Callable[[int], None],
                exit_after: int | None = None) -> int:
    """Optimiser steps `start` .. `steps`: `model(batch(step))` under autocast -> (loss, logs
    with "loss" and "mse"), backward, gradient clipping of `params`, an optimiser and a
    scheduler step; `checkpoint(step)` every `checkpoint_every` steps and at the end;
    `exit_after` (tests) exits with status 3 right after that step, saving nothing. Each
    batch is made a step ahead (`prefetch`), so `batch` must depend on its step alone. A
    tqdm bar on rank 0, its losses read every 10 steps (a read waits for the device).
    Returns the step reached."""
    params = list(params)  # clipped every step: not a one-shot generator
    bar = tqdm(total=steps, initial=start, disable=not runtime.is_main, dynamic_ncols=True)
    step = start  # the steps done
    for made_for, made in prefetch(batch, range(start, steps)):
        with runtime.autocast():
            loss, logs = model(made)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = made_for + 1
        if exit_after is not None and step == exit_after:
            os._exit(3)
        bar.update(1)
        if step % 10 == 0 or step == steps:
            bar.set_postfix(loss=f"{runtime.mean(logs['loss']):.4g}",
                            mse=f"{runtime.mean(logs['mse']):.2f}",
                            gnorm=f"{float(grad_norm):.2f}",
                            lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if step % checkpoint_every == 0 or step == steps:
            checkpoint(step)
    bar.close()
    return step


# -- checkpoints --------------------------------------------------------------------------


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            name = f"{pid}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `directory/checkpoint/` atomically: a new folder is renamed over the old one."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final, tmp, old = root / CHECKPOINT, root / f".tmp-{CHECKPOINT}", root / f".old-{CHECKPOINT}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["torch_cuda"] = torch.cuda.get_rng_state()
    save_file(rng, tmp / "rng.safetensors")
    meta = {
        "step": step,
        "optimizer": opt_meta,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "extra": extra or {},
    }
    (tmp / "state.json").write_text(json.dumps(meta))
    for p in tmp.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> tuple[int, dict[str, Any]] | None:
    """Restore the latest checkpoint in `directory`; returns (step, extra), or None if none.

    A checkpoint interrupted mid-rename (only `.old-checkpoint` left) is recovered.
    """
    root = Path(directory)
    final, old = root / CHECKPOINT, root / f".old-{CHECKPOINT}"
    if not final.exists() and old.exists():
        os.rename(old, final)
    if not final.exists():
        return None
    try:
        meta = json.loads((final / "state.json").read_text())
        weights = load_file(final / "model.safetensors")
        opt_tensors = load_file(final / "optimizer.safetensors")
        rng = load_file(final / "rng.safetensors")
    except Exception as e:  # noqa: BLE001 - any damage means the same thing to the user
        raise RuntimeError(
            f"checkpoint {final} is corrupt or incomplete ({e}); delete it to start over"
        ) from e
    unwrap(model).load_state_dict(weights)
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, meta["optimizer"]))
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(rng["torch_cpu"])
    if "torch_cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["torch_cuda"])
    return int(meta["step"]), meta["extra"]

