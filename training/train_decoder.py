"""Train a fast frame decoder for a world model's VAE latents and measure its floor.

    python training/train_decoder.py --data runs/breakout --model models/breakout \\
        --channels 16 32 64 --steps 2000

The world-model folder --model must hold a trained "vae". Its encoder stays frozen: each
batch is random train-split frames at native resolution, encoded to normalised latents (a
posterior sample, seeded per step, so the decoder also sees latents a little off the mean, as
the denoiser's are), and the decoder (`neuralgym.models.decoder.FrameDecoder`, smaller widths
than the VAE's decoder) learns to turn them back into the frames with the VAE's
bright-weighted loss. AdamW, linear warm-up then cosine decay, gradient clipping. Every
--checkpoint-every steps and at the end: an exactly resumable checkpoint in
MODEL/train/decoder/, the "decoder" component written into MODEL, and its reconstruction
floor on test-split frames (encode with the VAE, decode with this decoder; MSE on the 0-255
scale, PSNR) in MODEL/decoder_eval.json beside the VAE's own floor on the same frames.

The world model then decodes with it (`WorldModel.from_pretrained(MODEL)`; `decoder="vae"`
keeps the VAE's). Resume: rerun the same command. If MODEL already holds a "decoder" but no
checkpoint (committed weights), training fine-tunes it and keeps its architecture. The VAE
must not change afterwards: a retrained VAE needs a retrained decoder.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralgym.cli import parse_args
from neuralgym.data import atomic_write_json
from neuralgym.metrics import reconstruction_floor
from neuralgym.model_folder import ModelFolder, ModelFolderError, count_parameters
from neuralgym.models.decoder import COMPONENT, FrameDecoder, decoder_config
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
    """Train the fast decoder (the "decoder" component of a world-model folder)."""

    data: str = field(metadata={"help": "dataset folder (agents/record.py)"})
    model: str = field(metadata={"help": "world-model folder with a trained vae; the decoder "
                                         "is written into it"})
    channels: tuple[int, ...] = field(default=(16, 32, 64), metadata={
        "help": "decoder widths, one per level from full resolution down (as many levels as "
                "the VAE)"})
    layers_per_block: int = field(default=0, metadata={
        "help": "the decoder has this + 1 resnets per level"})
    norm_num_groups: int = field(default=16, metadata={
        "help": "GroupNorm groups; must divide every width"})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    runtime = setup_runtime(args.device)
    dataset, train_frames, test_frames, eval_split = frame_splits(args.data)
    if args.batch_size % runtime.world_size:
        sys.exit(f"error: --batch-size {args.batch_size} is not divisible by "
                 f"{runtime.world_size} ranks")
    local_batch = args.batch_size // runtime.world_size

    folder = ModelFolder(args.model)
    ckpt_dir = Path(args.model) / "train" / COMPONENT
    try:
        if not folder.has("vae"):
            sys.exit(f"error: {args.model} has no trained vae: run training/train_vae.py "
                     f"--data {args.data} --out {args.model} first")
        folder_env = folder.read_config().get("env_id")
        if folder_env and folder_env != dataset.env_id:
            sys.exit(f"error: {args.model} is a world model of {folder_env}, the data is of "
                     f"{dataset.env_id}")
        vae = FrameVAE.from_folder(args.model).to(runtime.device).requires_grad_(False)
        finetune = folder.has(COMPONENT)
        if finetune:
            config = folder.component_config(COMPONENT, VAEConfig)
            if (config.latent_shape, config.latent_shift, config.latent_scale) != (
                    vae.config.latent_shape, vae.config.latent_shift, vae.config.latent_scale):
                sys.exit(f"error: the decoder in {args.model} was trained for other latents "
                         "(shape or normalisation) than its vae's; delete decoder.safetensors "
                         "and its config entry to train a new one")
        else:
            config = decoder_config(vae.config, args.channels, args.layers_per_block,
                                    args.norm_num_groups)
        torch.manual_seed(args.seed)
        decoder = FrameDecoder(config)
        has_checkpoint = any((ckpt_dir / n).exists() for n in ("checkpoint", ".old-checkpoint"))
        if finetune and not has_checkpoint:
            folder.load_component(COMPONENT, decoder)
            if runtime.is_main:
                print(f"fine-tuning the decoder in {args.model} (architecture from its "
                      "config.json)")
    except (ModelFolderError, ValueError) as e:
        sys.exit(f"error: {e}")
    model = runtime.wrap(decoder, args.compile)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=args.lr,
                                  weight_decay=args.weight_decay)
    scheduler = warmup_cosine(optimizer, args.warmup, args.steps)
    resumed = load_checkpoint(ckpt_dir, decoder, optimizer, scheduler)
    step = resumed[0] if resumed is not None else 0
    if runtime.is_main:
        print(f"decoder: {count_parameters(decoder):,} parameters (the vae's decoder: "
              f"{count_parameters(vae.vae.decoder):,}), latents {config.latent_shape} -> "
              f"frames {config.frame_height}x{config.frame_width}; {len(train_frames)} train "
              "frames" + (f"; resumed at step {step}" if resumed is not None else ""))

    eval_batch = test_frames.sample(args.eval_frames, np.random.default_rng([args.seed, 2]))
    vae_floor = reconstruction_floor(vae, eval_batch, local_batch, runtime.autocast)

    def checkpoint(step: int) -> None:
        """Checkpoint, write the component and the eval (rank 0)."""
        if runtime.is_main:
            save_checkpoint(ckpt_dir, model, optimizer, scheduler, step,
                            extra={"decoder_config": asdict(decoder.config)})
            decoder.eval()
            folder.save_component(COMPONENT, decoder, decoder.config)
            result = reconstruction_floor(vae, eval_batch, local_batch, runtime.autocast,
                                          decoder=decoder)
            decoder.train()
            atomic_write_json(Path(args.model) / f"{COMPONENT}_eval.json", {
                "step": step, "split": eval_split, "parameters": count_parameters(decoder),
                "data": str(Path(args.data).resolve()), **result, "vae_floor": vae_floor})
            tqdm.write(f"step {step}: reconstruction MSE {result['mse']:.3f} "
                       f"(95% CI {result['mse_ci95'][0]:.3f}-{result['mse_ci95'][1]:.3f}), "
                       f"PSNR {result['psnr_of_mean_mse']:.2f} dB on {result['n_frames']} "
                       f"{eval_split} frames; the vae's own decoder: {vae_floor['mse']:.3f}")
        runtime.barrier()

    def batch(step: int) -> dict[str, torch.Tensor]:
        frames = train_frames.sample(local_batch, runtime.rng(args.seed, step))
        with runtime.autocast():  # made in a prefetch thread: autocast is per thread
            latents = vae.encode(frames, sample=True,
                                 generator=runtime.generator(args.seed, step))
        return {"frames": torch.from_numpy(frames).to(runtime.device), "latents": latents}

    model.train()
    step = train_steps(model, decoder.parameters(), optimizer, scheduler, runtime, start=step,
                       steps=args.steps, batch=batch, grad_clip=args.grad_clip,
                       checkpoint_every=args.checkpoint_every, checkpoint=checkpoint,
                       exit_after=args.exit_after)
    if resumed is not None and step == resumed[0] and runtime.is_main:
        print(f"nothing to do: the checkpoint is already at step {step} (--steps {args.steps})")


if __name__ == "__main__":
    main()
