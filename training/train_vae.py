"""Train the frame VAE on a dataset's frames and measure its reconstruction floor.

    python training/train_vae.py --data runs/breakout --out models/breakout --steps 3000
    torchrun --nproc_per_node 4 training/train_vae.py --data runs/breakout --out models/breakout

Batches are random frames of the train split at native resolution (runtime.rng(seed, step)),
AdamW with linear warm-up and cosine decay, gradient clipping. Every --checkpoint-every steps
and at the end: an exactly resumable checkpoint in OUT/train/vae/, the latent normalisation
refitted on train frames, the "vae" component written into the world-model folder OUT, and
the reconstruction floor measured on test-split frames (MSE on the 0-255 scale, PSNR) into
OUT/vae_eval.json.

Resume: rerun the same command; it continues from OUT/train/vae/checkpoint with the same
batches. Fine-tune: if OUT already holds a "vae" component but no checkpoint (e.g. committed
weights), training starts from those weights and keeps their architecture. --init-from DIR
starts a new VAE from the one in DIR instead (another game's world model with frames of the
same size: a VAE is a codec of frames, not of one game).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralgym.cli import parse_args
from neuralgym.data import atomic_write_json
from neuralgym.metrics import reconstruction_floor
from neuralgym.model_folder import ModelFolder, ModelFolderError, count_parameters
from neuralgym.models.vae import FrameVAE, VAEConfig
from neuralgym.trainer import (
    FrameTrainingArgs,
    frame_splits,
    load_checkpoint,
    save_checkpoint,
    setup_runtime,
    train_steps,
    warmup_cosine,
)


@dataclass(kw_only=True)
class Args(FrameTrainingArgs):
    """Train the frame VAE (the "vae" component of a world-model folder)."""

    data: str = field(metadata={"help": "dataset folder (agents/record.py)"})
    out: str = field(metadata={"help": "world-model folder to write the vae component into"})
    steps: int = field(default=3000, metadata={"help": "total optimiser steps"})
    norm_frames: int = field(default=1024, metadata={
        "help": "train frames to fit the latent normalisation on"})
    init_from: str | None = field(default=None, metadata={
        "help": "a world-model folder whose vae (architecture and weights) a new vae starts "
                "from, e.g. another game's of the same frame size; ignored when OUT already "
                "has a vae or a checkpoint"})
    # the model (ignored when fine-tuning or with --init-from: that vae's architecture is kept)
    block_out_channels: tuple[int, ...] = field(default=VAEConfig.block_out_channels, metadata={
        "help": "channels per level; n levels => 2^(n-1) x down"})
    layers_per_block: int = field(default=VAEConfig.layers_per_block, metadata={
        "help": "resnets per encoder level (decoder: one more)"})
    latent_channels: int = field(default=VAEConfig.latent_channels, metadata={
        "help": "latent channels"})
    norm_num_groups: int = field(default=VAEConfig.norm_num_groups, metadata={
        "help": "GroupNorm groups (divides every level's channels)"})
    mid_block_add_attention: bool = field(default=VAEConfig.mid_block_add_attention, metadata={
        "help": "self-attention in the mid blocks"})
    pad_multiple: int = field(default=VAEConfig.pad_multiple, metadata={
        "help": "pad frames with black to a multiple of this"})
    bright_weight: float = field(default=VAEConfig.bright_weight, metadata={
        "help": "loss weight of non-black pixels"})
    kl_weight: float = field(default=VAEConfig.kl_weight, metadata={
        "help": "weight of the KL term (per pixel value)"})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    runtime = setup_runtime(args.device)
    dataset, train_frames, test_frames, eval_split = frame_splits(args.data)
    height, width = train_frames.frames[0].shape[1:3]
    if args.batch_size % runtime.world_size:
        sys.exit(f"error: --batch-size {args.batch_size} is not divisible by "
                 f"{runtime.world_size} ranks")
    local_batch = args.batch_size // runtime.world_size

    # The model: the folder's architecture when fine-tuning, else the arguments'.
    folder = ModelFolder(args.out)
    ckpt_dir = Path(args.out) / "train" / "vae"
    try:
        folder_env = folder.read_config().get("env_id") if folder.config_path.exists() else None
        finetune = folder.has("vae")
        if folder_env and folder_env != dataset.env_id:
            sys.exit(f"error: {args.out} is a world model of {folder_env}, the data is of "
                     f"{dataset.env_id}")
        has_checkpoint = any((ckpt_dir / n).exists() for n in ("checkpoint", ".old-checkpoint"))
        source = folder if finetune else None
        if source is None and args.init_from is not None:
            source = ModelFolder(args.init_from)
        if source is not None:
            config = replace(source.component_config("vae", VAEConfig),
                             bright_weight=args.bright_weight, kl_weight=args.kl_weight)
        else:
            config = VAEConfig(
                frame_height=height, frame_width=width,
                block_out_channels=args.block_out_channels,
                layers_per_block=args.layers_per_block, latent_channels=args.latent_channels,
                norm_num_groups=args.norm_num_groups,
                mid_block_add_attention=args.mid_block_add_attention,
                pad_multiple=args.pad_multiple, bright_weight=args.bright_weight,
                kl_weight=args.kl_weight,
            )
        if (config.frame_height, config.frame_width) != (height, width):
            sys.exit(f"error: the vae in {args.out} is for {config.frame_height}x"
                     f"{config.frame_width} frames, the data has {height}x{width}")
        torch.manual_seed(args.seed)
        vae = FrameVAE(config)
        if source is not None and not has_checkpoint:
            source.load_component("vae", vae)
            if runtime.is_main:
                print(f"fine-tuning the vae in {source.root} (architecture from its "
                      f"config.json)" + ("" if finetune else f", written to {args.out}"))
    except (ModelFolderError, ValueError) as e:
        sys.exit(f"error: {e}")
    model = runtime.wrap(vae, args.compile)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = warmup_cosine(optimizer, args.warmup, args.steps)
    resumed = load_checkpoint(ckpt_dir, vae, optimizer, scheduler)
    step = resumed[0] if resumed is not None else 0
    if runtime.is_main:
        print(f"vae: {count_parameters(vae):,} parameters, frames {height}x{width} -> "
              f"latents {config.latent_shape}; {len(train_frames)} train frames"
              + (f"; resumed at step {step}" if resumed is not None else ""))

    # Fixed frames for the normalisation fit and the eval (the same at every checkpoint).
    norm_batch = train_frames.sample(args.norm_frames, np.random.default_rng([args.seed, 1]))
    eval_batch = test_frames.sample(args.eval_frames, np.random.default_rng([args.seed, 2]))

    def checkpoint(step: int) -> None:
        """Checkpoint, refit the normalisation, write the component and the eval (rank 0)."""
        if runtime.is_main:
            save_checkpoint(ckpt_dir, model, optimizer, scheduler, step,
                            extra={"vae_config": asdict(vae.config)})
            vae.eval()
            with runtime.autocast():
                vae.fit_latent_normalization(norm_batch, batch_size=local_batch)
            folder.save_component("vae", vae, vae.config)
            folder.update(env_id=dataset.env_id)
            result = reconstruction_floor(vae, eval_batch, local_batch, runtime.autocast)
            vae.train()
            atomic_write_json(Path(args.out) / "vae_eval.json", {
                "step": step, "split": eval_split, "parameters": count_parameters(vae),
                "data": str(Path(args.data).resolve()), **result})
            tqdm.write(f"step {step}: reconstruction MSE {result['mse']:.3f} "
                       f"(95% CI {result['mse_ci95'][0]:.3f}-{result['mse_ci95'][1]:.3f}), "
                       f"PSNR {result['psnr_of_mean_mse']:.2f} dB on {result['n_frames']} "
                       f"{eval_split} frames")
        runtime.barrier()

    def batch(step: int) -> dict[str, torch.Tensor]:
        frames = train_frames.sample(local_batch, runtime.rng(args.seed, step))
        noise = torch.randn((local_batch, *config.latent_shape),
                            generator=runtime.generator(args.seed, step))
        return {"frames": torch.from_numpy(frames).to(runtime.device, non_blocking=True),
                "noise": noise.to(runtime.device)}

    model.train()
    step = train_steps(model, vae.parameters(), optimizer, scheduler, runtime, start=step,
                       steps=args.steps, batch=batch, grad_clip=args.grad_clip,
                       checkpoint_every=args.checkpoint_every, checkpoint=checkpoint,
                       exit_after=args.exit_after)
    if resumed is not None and step == resumed[0] and runtime.is_main:
        print(f"nothing to do: the checkpoint is already at step {step} (--steps {args.steps})")


if __name__ == "__main__":
    main()
