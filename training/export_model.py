"""Copy a world-model folder into the repository (config.json + small safetensors files, the
evaluation JSONs and the start contexts).

Committed weights must be safetensors files under 16 MiB each. Weight tensors of more than
`--min-numel` elements are stored in float16 (half the bytes); small tensors (biases, norms,
normalisation buffers) stay float32. Loading casts them back to each parameter's dtype. The
training checkpoints (DIR/train/) are not copied: the next GPU session fine-tunes from
these weights.

    python training/export_model.py --model runs/wm --out checkpoints/pong
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from neuralgym.cli import parse_args
from neuralgym.model_folder import ModelFolder

LIMIT = 16 * 2**20


@dataclass
class Args:
    model: Path = field(metadata={"help": "world-model folder to export"})
    out: Path = field(metadata={"help": "destination folder (replaced)"})
    min_numel: int = field(default=1024, metadata={
        "help": "float tensors with more elements than this are stored as float16"})
    note: str = field(default="", metadata={
        "help": "a line on how the model was trained, kept in config.json under 'training'"})


def export(args: Args) -> None:
    config = ModelFolder(args.model).read_config()
    tmp = args.out.with_name(f".tmp-{args.out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in config["components"]:
        weights = load_file(args.model / f"{name}.safetensors")
        small = {
            k: v.half() if v.is_floating_point() and v.numel() > args.min_numel else v
            for k, v in weights.items()
        }
        path = tmp / f"{name}.safetensors"
        save_file(small, path, metadata={"component": name})
        size = path.stat().st_size
        if size >= LIMIT:
            raise SystemExit(f"{name}: {size / 2**20:.1f} MiB even in float16; make it smaller")
        print(f"{name}: {sum(v.numel() for v in weights.values()) / 1e6:.2f}M values, "
              f"{size / 2**20:.1f} MiB")
    if args.note:
        config["training"] = [*config.get("training", []), args.note]
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    extras = [*sorted(args.model.glob("*_eval.json")), args.model / "start_contexts.safetensors"]
    for extra in extras:
        if extra.exists():
            if extra.stat().st_size >= LIMIT:
                raise SystemExit(f"{extra} is {extra.stat().st_size / 2**20:.1f} MiB; make "
                                 "fewer start contexts (make_start_contexts.py --count)")
            shutil.copy(extra, tmp / extra.name)
    if args.out.exists():
        shutil.rmtree(args.out)
    os.rename(tmp, args.out)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    export(parse_args(Args))
