"""Encode every frame of a dataset once with a world-model folder's VAE into a latent cache.

    python training/prepare_latents.py --data runs/breakout --model models/breakout \
        --out runs/breakout-latents

The metadata predictor and the denoiser then train from the memory-mapped cache
(neuralgym/latents.py) instead of decoding frames and running the encoder every step.
Every episode of every split is encoded (posterior mean, normalised as the VAE's config says);
the cache keeps each episode's split. Latents stream into a temporary memory-mapped .npy, so
memory stays bounded on big datasets; the cache appears atomically (a temporary folder
renamed into place) and is never overwritten: delete OUT to encode again, e.g. after
retraining the VAE (info.json records the VAE's config and the checksum of its weights).

info.json also holds per-variable metadata statistics over the train frames
("metadata_mean", "metadata_std"; a constant variable gets std 1) for the models that
normalise metadata.

Without --model no frame is read: the cache holds the metadata and actions only (latents of
shape (N, 0, 0, 0)), for a g_phi that reads no frames (train_metadata.py --no-latent-input),
from episodes recorded with or without frames (agents/record.py --no-frames).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralgym.cli import parse_args
from neuralgym.data import Dataset, frames_of
from neuralgym.games import UnknownEnvError, get_spec
from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder, ModelFolderError
from neuralgym.models.vae import FrameVAE
from neuralgym.trainer import Runtime, setup_runtime


@dataclass
class Args:
    """Encode a dataset into a latent cache with a world-model folder's VAE."""

    data: str = field(metadata={"help": "dataset folder (agents/record.py)"})
    out: str = field(metadata={"help": "latent cache folder to create (must not exist)"})
    model: str | None = field(default=None, metadata={
        "help": "world-model folder with a trained vae component (none: metadata and actions "
                "only, no latents)"})
    batch_size: int = field(default=256, metadata={"help": "frames per encoder call"})
    device: str | None = field(default=None, metadata={"help": "cuda or cpu (default: cuda if "
                                                                 "available)"})


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def encode(vae: FrameVAE, frames: np.ndarray, out: np.ndarray, name: str, batch_size: int,
           runtime: Runtime) -> None:
    """Encode an episode's frames (N+1, H, W, 3) into out[:N+1] (C, h, w) float16."""
    cfg = vae.config
    if frames.shape[1:3] != (cfg.frame_height, cfg.frame_width):
        raise ValueError(f"episode {name} has {frames.shape[1]}x{frames.shape[2]} frames, the "
                         f"VAE takes {cfg.frame_height}x{cfg.frame_width}")
    for i in range(0, len(frames), batch_size):
        chunk = torch.from_numpy(np.array(frames[i : i + batch_size]))  # (B,H,W,3), a copy:
        # the frames are a read-only memory map, which torch must not be handed
        with runtime.autocast():
            z = vae.encode(chunk)  # (B, C, h, w) float32, normalised
        out[i : i + len(chunk)] = z.cpu().numpy()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    out = Path(args.out)
    if out.exists():
        sys.exit(f"error: {out} already exists; delete it to encode again")
    try:
        dataset = Dataset(args.data)
        vae = FrameVAE.from_folder(args.model) if args.model else None
        model_env = ModelFolder(args.model).read_config().get("env_id") if args.model else None
    except (FileNotFoundError, ModelFolderError) as e:
        sys.exit(f"error: {e}")
    if model_env and model_env != dataset.env_id:
        sys.exit(f"error: {args.model} is a world model of {model_env}, {args.data} holds "
                 f"{dataset.env_id}")
    refs = dataset.split("all")
    if not refs:
        sys.exit(f"error: {args.data} has no episodes")
    runtime = setup_runtime(args.device)
    if vae is not None:
        vae = vae.to(runtime.device)
    latent_shape = vae.config.latent_shape if vae is not None else (0, 0, 0)

    lengths = np.asarray([ref.length + 1 for ref in refs], np.int64)  # frames per episode
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n, m = int(lengths.sum()), len(dataset.metadata_names)
    episodes = np.stack([starts, lengths, [ref.split == "test" for ref in refs]], 1)  # (E, 3)
    metadata = np.zeros((n, m), np.float32)  # (N, M)
    actions = np.full(n, -1, np.int64)  # (N,) -1 at each episode's last frame

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_latents = out.with_name(f".tmp-{out.name}-latents.npy.{os.getpid()}")
    try:
        latents = np.lib.format.open_memmap(tmp_latents, mode="w+", dtype=np.float16,
                                            shape=(n, *latent_shape))  # (N, C, h, w)
        with tqdm(total=n, unit="frame", desc="encoding" if vae is not None else "reading") as bar:
            for ref, start in zip(refs, starts, strict=True):
                ep = dataset.load(ref)
                if vae is not None:
                    encode(vae, frames_of(ep, ref.name), latents[start:], ref.name,
                           args.batch_size, runtime)
                metadata[start : start + len(ep.metadata)] = ep.metadata
                actions[start : start + len(ep.actions)] = ep.actions
                bar.update(len(ep.metadata))
        latents.flush()
        del latents

        # Metadata statistics over train frames (all frames if there is no train split).
        train_rows = np.zeros(n, bool)
        for (s, length, is_test) in episodes:
            train_rows[s : s + length] = not is_test
        stats_rows = train_rows if train_rows.any() else np.ones(n, bool)
        mean = metadata[stats_rows].astype(np.float64).mean(0)
        std = metadata[stats_rows].astype(np.float64).std(0)
        std = np.where(std > 1e-6, std, 1.0)

        info = {
            "env_id": dataset.env_id,
            "metadata_names": list(dataset.metadata_names),
            "latent_shape": list(latent_shape),
            "num_frames": n,
            "num_episodes": len(refs),
            "metadata_mean": [float(v) for v in mean],
            "metadata_std": [float(v) for v in std],
            "metadata_stats_split": "train" if train_rows.any() else "all",
            "dataset": str(Path(args.data).resolve()),
        }
        if vae is not None and args.model:
            cfg = vae.config
            info.update(frame_shape=[cfg.frame_height, cfg.frame_width, 3],
                        vae_config=asdict(cfg), model_folder=str(Path(args.model).resolve()),
                        vae_sha256=sha256(Path(args.model) / "vae.safetensors"))
        try:
            spec = get_spec(dataset.env_id)
            info["n_actions"] = spec.n_actions
            if list(spec.metadata_names) == list(dataset.metadata_names):
                info["metadata_kinds"] = [v.kind for v in spec.metadata]
        except UnknownEnvError:
            pass
        LatentCache.write(out, tmp_latents, metadata, actions, episodes, info)
    except ValueError as e:
        sys.exit(f"error: {e}")
    finally:
        tmp_latents.unlink(missing_ok=True)
    cache = LatentCache(out)
    print(f"wrote {out}: {n} frames of {len(refs)} episodes "
          f"({int(episodes[:, 2].sum())} test), "
          + (f"latents {cache.latent_shape} float16 ({cache.latents.nbytes / 2**20:.1f} MiB)"
             if cache.has_latents else "metadata and actions only (no latents)"))


if __name__ == "__main__":
    main()
