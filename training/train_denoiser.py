"""Train the latent denoiser from a latent cache and evaluate it on the test split.

    python training/train_denoiser.py --cache CACHE --out MODEL_DIR --stage lora
    python training/train_denoiser.py --cache CACHE --out MODEL_DIR --stage cond
    torchrun --nproc_per_node 8 training/train_denoiser.py --cache ... --out ... --stage cond

The first document's two stages:
- `--stage lora`: the denoiser learns the game's frames alone (no context, no actions, no
  metadata), from scratch or from a diffusers base (`--base DIR`, e.g. a local copy of
  SimianLuo/LCM_Dreamshaper_v7's unet/) with LoRA adapters (`--lora-rank`, 0 = full
  fine-tune). Saved as component "denoiser_lora".
- `--stage cond`: all conditioning (K context latents, actions, metadata). Starts from the
  folder's "denoiser_lora" when there is one (or from `--base`), with LoRA adapters on the
  attention projections, new input/output layers and the conditioning encoders trained
  fully; from scratch otherwise. Saved as "denoiser" (`--component` keeps ablations apart).
LoRA weights are merged before saving, so the world-model folder holds one plain
safetensors file per component, loadable without peft.

Each step draws windows of K context + T target latents from the train split, computes the
v-prediction loss (with context noise augmentation) and steps AdamW with warm-up + cosine
decay and gradient clipping. Checkpoints go to MODEL_DIR/train/<component>/ (resumed from
automatically, with the same batches and noise). At the end it samples every (evenly
spaced, at most --eval-windows) test window with each of --eval-steps sampler steps and
writes the latent MSE of the T predicted latents beside copy-last (Z_{t+h} = Z_t) to
MODEL_DIR/<component>_eval.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralgym.cli import parse_args
from neuralgym.data import atomic_write_json
from neuralgym.games import UnknownEnvError, get_spec
from neuralgym.latents import LatentCache, Windows, boosted_cdf
from neuralgym.model_folder import ModelFolder, config_from_dict, count_parameters
from neuralgym.models.denoiser import BaseModel, Denoiser, DenoiserConfig
from neuralgym.sampler import sample
from neuralgym.trainer import (
    load_checkpoint,
    prefetch,
    save_checkpoint,
    setup_runtime,
    unwrap,
    warmup_cosine,
)


@dataclass
class Args:
    """Train the latent denoiser (stage lora: frames alone; stage cond: conditioned)."""

    cache: str = field(metadata={"help": "latent cache folder (training/prepare_latents.py)"})
    out: str = field(metadata={"help": "world-model folder to write the component into"})
    stage: str = field(default="cond", metadata={
        "help": "lora: frames alone (first stage); cond: context, actions, metadata",
        "choices": ["lora", "cond"]})
    component: str = field(default="", metadata={
        "help": "component name (default: denoiser_lora for stage lora, denoiser for cond)"})
    backbone: str = field(default="unet", metadata={
        "help": "unet (UNet2DConditionModel) or dit (spatio-temporal DiT, Latte)",
        "choices": ["unet", "dit"]})
    context: int = field(default=4, metadata={"help": "K: context latents per call"})
    frames_per_call: int = field(default=1, metadata={"help": "T: latents generated per call"})
    action_encoding: str = field(default="embedding", metadata={
        "help": "action encoder input", "choices": ["embedding", "onehot"]})
    action_context: str = field(default="future", metadata={
        "help": "future: the T actions a_t..a_{t+T-1}; past+future: also the K-1 past ones",
        "choices": ["future", "past+future"]})
    metadata: bool = field(default=True, metadata={
        "help": "condition on the target frames' metadata (--no-metadata: the baseline)"})
    base: str = field(default="", metadata={
        "help": "start from this diffusers model folder (UNet2DConditionModel / "
                "LatteTransformer3DModel) or world-model folder; stage cond defaults to "
                "--out's denoiser_lora when present; 'none': from scratch regardless"})
    lora_rank: int = field(default=16, metadata={
        "help": "LoRA rank when starting from a base (0 = full fine-tune)"})
    # model size (ignored when starting from a base: its architecture is kept)
    channels: tuple[int, ...] = field(default=(64, 128, 128), metadata={
        "help": "unet: channels per level"})
    attention_from: int = field(default=1, metadata={
        "help": "unet: first level with cross-attention blocks (0 = all levels)"})
    layers_per_block: int = field(default=2, metadata={"help": "unet: resnet layers per level"})
    heads: int = field(default=8, metadata={"help": "unet: attention heads"})
    norm_groups: int = field(default=32, metadata={"help": "unet: group-norm groups"})
    token_dim: int = field(default=256, metadata={"help": "D: conditioning token size"})
    dit_patch_size: int = field(default=2, metadata={"help": "dit: patch size"})
    dit_layers: int = field(default=4, metadata={"help": "dit: spatial+temporal block pairs"})
    dit_heads: int = field(default=4, metadata={"help": "dit: attention heads"})
    dit_head_dim: int = field(default=64, metadata={"help": "dit: channels per head"})
    context_noise_max: float | None = field(default=None, metadata={
        "help": "context noise augmentation: level ~ U(0, this) (default: 0.3, or the "
                "fine-tuned denoiser's own)"})
    context_drop: float | None = field(default=None, metadata={
        "help": "context dropout: the share of training windows given no context, so that "
                "the actions and metadata alone must make the frame (default: 0, or the "
                "fine-tuned denoiser's own); dream so with context noise -1"})
    metadata_maps: bool = field(default=False, metadata={
        "help": "unet: the metadata and pixel coordinates also as input channels, so that "
                "the metadata can place objects (a fine-tuned denoiser without them gains "
                "them, their new weights at zero)"})
    position_maps: bool = field(default=False, metadata={
        "help": "unet: each on-screen position of the game's metadata (ball_x, ball_y, a "
                "paddle's y: the spec's MetaVar.screen) also drawn as a stripe input channel "
                "at its pixel (a fine-tuned denoiser without them gains them, their new "
                "weights at zero)"})
    # optimisation
    steps: int = field(default=20_000, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=64, metadata={"help": "windows per step (per GPU)"})
    lr: float = field(default=3e-4, metadata={"help": "peak learning rate"})
    warmup: int = field(default=200, metadata={"help": "linear warm-up steps"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    change_boost: float = field(default=1.0, metadata={
        "help": "draw the train windows whose first target differs most from the last context "
                "frame (the top --change-top share by latent MSE: rare sudden changes, as a "
                "hit's full-screen flash) this many times as often as the others; 1: uniform"})
    change_top: float = field(default=0.01, metadata={
        "help": "the share of train windows --change-boost draws more often"})
    change_reweight: bool = field(default=False, metadata={
        "help": "with --change-boost, weigh each window's loss by the importance weight that "
                "undoes the boost (a boosted window 1/B of a plain one, renormalised), so the "
                "expected gradient is the uniform draw's: the sharp changes are seen more often "
                "but not predicted more often (without it the model learns them as B times "
                "likelier than they are, and draws some that do not come)"})
    checkpoint_every: int = field(default=1000, metadata={"help": "checkpoint every N steps"})
    eval_steps: tuple[int, ...] = field(default=(1, 4), metadata={
        "help": "sampler steps to evaluate with"})
    eval_windows: int = field(default=512, metadata={
        "help": "most test windows to evaluate (evenly spaced)"})
    eval_batch: int = field(default=64, metadata={"help": "windows per evaluation batch"})
    seed: int = field(default=0, metadata={"help": "seed of the weights, batches and noise"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda (default: cuda if any)"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA)"})
    max_seconds: float = field(default=0.0, metadata={
        "help": "stop after this many seconds of training (0: no limit), saving a checkpoint "
                "and the component first; a later call with the same --steps resumes"})
    exit_after: int = field(default=0, metadata={
        "help": "tests: exit(3) right after this step, saving nothing"})


def to_tensors(w: Windows, device: torch.device) -> dict[str, torch.Tensor]:
    """The windows on `device`; latents and metadata float32 (float16 latents are converted
    there, after the copy)."""
    keys = ("context", "target", "actions", "metadata") + (("weight",) if w.weight is not None
                                                            else ())
    out = {k: torch.from_numpy(np.ascontiguousarray(getattr(w, k))).to(device) for k in keys}
    return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}


def windows_at(cache: LatentCache, starts: np.ndarray, K: int, T: int) -> Windows:
    """The windows at exactly these start indices (in order)."""
    rng = np.random.default_rng(0)
    ws = [cache.sample(starts[i:i + 1], 1, K, T, rng) for i in range(len(starts))]
    return Windows(*(np.concatenate([getattr(w, k) for w in ws])
                     for k in ("context", "target", "metadata", "actions")))


def metadata_stats(cache: LatentCache) -> tuple[list[float], list[float]]:
    """Mean and std of each metadata variable: from info.json, else over the train frames."""
    info = cache.info
    if "metadata_mean" in info and "metadata_std" in info:
        return list(info["metadata_mean"]), list(info["metadata_std"])
    rows = [np.asarray(cache.metadata[s:s + n]) for s, n, is_test in cache.episodes
            if not is_test] or [np.asarray(cache.metadata)]
    m = np.concatenate(rows).astype(np.float64)
    std = m.std(0)
    return m.mean(0).tolist(), np.where(std > 1e-6, std, 1.0).tolist()


def screen_positions_of(cache: LatentCache) -> tuple[tuple[tuple[int, str, float], ...], int]:
    """The cache's game's on-screen positions (`GameSpec.screen_positions`) and the frame
    pixels per latent pixel; a ValueError where the cache's game or metadata do not allow
    position maps."""
    env_id = cache.info.get("env_id", "")
    spec = get_spec(env_id)  # UnknownEnvError is a ValueError
    positions = spec.screen_positions()
    if not positions:
        raise ValueError(f"{env_id}'s spec gives no variable a screen position (MetaVar.screen)")
    names = cache.info.get("metadata_names")
    if names is not None and list(names) != list(spec.metadata_names):
        raise ValueError(f"the cache's metadata {names} are not {env_id}'s "
                         f"{list(spec.metadata_names)}")
    H, W = spec.obs_shape[:2]
    _, h, w = cache.latent_shape
    stride = -(-H // h)
    if stride != -(-W // w):
        raise ValueError(f"frames {H}x{W} and latents {h}x{w} have no single pixel stride")
    return positions, stride


def n_actions_of(cache: LatentCache) -> int:
    if "n_actions" in cache.info:
        return int(cache.info["n_actions"])
    try:
        return get_spec(cache.info.get("env_id", "")).n_actions
    except UnknownEnvError:
        return int(np.asarray(cache.actions).max()) + 1


@torch.no_grad()
def evaluate(model: Denoiser, cache: LatentCache, args: Args, runtime) -> dict:
    """Latent MSE of sampled predictions vs targets on test windows, beside copy-last."""
    c = model.config
    K, T = c.context, c.frames_per_call
    starts = cache.window_starts("test", K, T)
    if len(starts) > args.eval_windows:
        starts = starts[np.linspace(0, len(starts) - 1, args.eval_windows).round().astype(int)]
    model.eval()
    sq = {s: np.zeros(T) for s in args.eval_steps}  # summed squared error per target frame
    copy_sq = np.zeros(T)
    count = 0
    generator = torch.Generator().manual_seed(args.seed)
    for k in range(0, len(starts), args.eval_batch):
        b = to_tensors(windows_at(cache, starts[k:k + args.eval_batch], K, T), runtime.device)
        target = b["target"]  # (B, T, C, h, w)
        copy = b["context"][:, -1:]  # (B, 1, C, h, w)
        copy_sq += ((copy - target) ** 2).mean((2, 3, 4)).sum(0).cpu().numpy()  # (T,)
        for s in args.eval_steps:
            with runtime.autocast():
                pred = sample(model, b["context"], b["actions"], b["metadata"], s, generator)
            sq[s] += ((pred.float() - target) ** 2).mean((2, 3, 4)).sum(0).cpu().numpy()
        count += len(target)
    return {
        "test_windows": count,
        "frames_per_call": T,
        "copy_last_mse": float(copy_sq.sum() / (count * T)),
        "copy_last_mse_per_frame": (copy_sq / count).tolist(),
        "mse": {str(s): float(sq[s].sum() / (count * T)) for s in args.eval_steps},
        "mse_per_frame": {str(s): (sq[s] / count).tolist() for s in args.eval_steps},
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    component = args.component or ("denoiser_lora" if args.stage == "lora" else "denoiser")
    runtime = setup_runtime(args.device)
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)  # CPU: tiny losses make denormals, ~10x slower arithmetic
    say = print if runtime.is_main else (lambda *a, **k: None)

    # -- data -----------------------------------------------------------------------------
    try:
        cache = LatentCache(args.cache)
        cache.require_latents("the denoiser")
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        sys.exit(f"error: {e}")
    K, T = args.context, args.frames_per_call
    try:
        train_starts = cache.window_starts("train", K, T)
        cache.window_starts("test", K, T)  # fail now, not after training
    except ValueError as e:
        sys.exit(f"error: {e} (or lower --context / --frames-per-call)")
    C, h, w = cache.latent_shape
    M = cache.metadata.shape[1] if args.metadata else 0
    cdf = None  # uniform windows, unless --change-boost
    if args.change_boost != 1.0:
        change = cache.change(train_starts)  # (N,) latent MSE, first target vs last context
        try:
            cdf, cut = boosted_cdf(change, args.change_top, args.change_boost)
        except ValueError as e:
            sys.exit(f"error: --change-top / --change-boost: {e}")
        n = int((change > cut).sum())
        share = n * args.change_boost / (n * args.change_boost + len(change) - n)
        say(f"--change-boost: {n} of {len(change)} train windows (latent change over {cut:.3g}; "
            f"median {np.median(change):.3g}) drawn {args.change_boost:g}x as often, "
            f"{share:.1%} of a batch")
    if args.change_reweight and cdf is None:
        sys.exit("error: --change-reweight undoes --change-boost's draw: give --change-boost too")
    if args.context_drop is not None and not 0.0 <= args.context_drop <= 1.0:
        sys.exit(f"error: --context-drop must be in [0, 1], got {args.context_drop}")
    if (args.metadata_maps or args.position_maps) and not M:
        sys.exit("error: --metadata-maps and --position-maps need metadata (drop --no-metadata)")
    positions: tuple[tuple[int, str, float], ...] = ()
    stride = DenoiserConfig.latent_stride
    if args.position_maps:
        try:
            positions, stride = screen_positions_of(cache)
        except ValueError as e:
            sys.exit(f"error: --position-maps: {e}")

    # -- model ----------------------------------------------------------------------------
    down = tuple("CrossAttnDownBlock2D" if i >= args.attention_from else "DownBlock2D"
                 for i in range(len(args.channels)))
    up = tuple("CrossAttnUpBlock2D" if i >= args.attention_from else "UpBlock2D"
               for i in reversed(range(len(args.channels))))
    config = DenoiserConfig(
        latent_channels=C, latent_height=h, latent_width=w, context=K, frames_per_call=T,
        n_actions=n_actions_of(cache), metadata_dim=M, stage=args.stage,
        action_encoding=args.action_encoding, action_context=args.action_context,
        token_dim=args.token_dim,
        context_noise_max=0.3 if args.context_noise_max is None else args.context_noise_max,
        metadata_maps=args.metadata_maps, context_drop=args.context_drop or 0.0,
        position_maps=positions, latent_stride=stride,
        backbone=args.backbone, block_out_channels=tuple(args.channels), down_block_types=down,
        up_block_types=up, layers_per_block=args.layers_per_block,
        attention_head_dim=args.heads, norm_num_groups=args.norm_groups,
        dit_patch_size=args.dit_patch_size, dit_layers=args.dit_layers,
        dit_heads=args.dit_heads, dit_head_dim=args.dit_head_dim,
    )
    folder = ModelFolder(args.out)
    ckpt_dir = Path(args.out) / "train" / component
    state_file = ckpt_dir / "checkpoint" / "state.json"
    lora_rank = 0
    if state_file.exists():  # a resumed run keeps the network it started with
        extra = json.loads(state_file.read_text())["extra"]
        config = config_from_dict(DenoiserConfig, extra["config"])
        lora_rank = int(extra["lora_rank"])
        model = Denoiser(config)
        missing = [flag for flag, asked, has in (
            ("--metadata-maps", args.metadata_maps, config.metadata_maps),
            ("--position-maps", args.position_maps, bool(config.position_maps))) if asked > has]
        if missing:
            sys.exit(f"error: the run in {ckpt_dir} resumes a denoiser without "
                     f"{' and '.join(missing)}; remove that folder to start a new run")
    elif folder.has(component) and args.base != "none":  # weights an earlier session committed
        model = Denoiser.from_folder(folder, component).train()
        say(f"fine-tuning the {component} in {args.out} (architecture from its config.json)")
        gains = {"metadata_maps": args.metadata_maps and not model.config.metadata_maps,
                 "position_maps": bool(positions) and not model.config.position_maps}
        if any(gains.values()):
            try:
                model = model.with_input_maps(
                    metadata_maps=True if gains["metadata_maps"] else None,
                    position_maps=positions if gains["position_maps"] else None,
                    latent_stride=stride)
            except ValueError as e:
                sys.exit(f"error: {e}")
            say(f"  it gains {' and '.join(k.replace('_', ' ') for k, v in gains.items() if v)}"
                " (new input weights at zero)")
        overrides = {k: getattr(args, k) for k in ("context_noise_max", "context_drop")
                     if getattr(args, k) is not None}
        try:
            model.config = replace(model.config, **overrides)
        except ValueError as e:
            sys.exit(f"error: {e}")
        config = model.config
    else:
        base_path = "" if args.base == "none" else args.base
        if not args.base and args.stage == "cond" and folder.has("denoiser_lora"):
            lora_backbone = folder.read_config()["components"]["denoiser_lora"]["backbone"]
            if lora_backbone == args.backbone:
                base_path = args.out
            else:
                say(f"note: the folder's denoiser_lora is a {lora_backbone}, not a "
                    f"{args.backbone}: not starting from it")
        base = None
        if base_path:
            try:
                base = BaseModel.find(base_path)
                config = base.apply_to(config)
            except (FileNotFoundError, ValueError) as e:
                sys.exit(f"error: --base {base_path}: {e}")
        model = Denoiser(config)
        if base is not None:
            fresh = model.load_base(base)
            say(f"started from {base.kind} base {base.path} {base.component} (architecture "
                f"kept, size flags ignored); new: {', '.join(fresh) or 'nothing'}")
            lora_rank = args.lora_rank
        elif args.stage == "cond":
            say("note: training from scratch (no stage-lora denoiser to start from)")
    if (config.context, config.frames_per_call, config.metadata_dim) != (K, T, M):
        sys.exit(f"error: the {component} in {args.out} has K={config.context}, "
                 f"T={config.frames_per_call}, metadata_dim={config.metadata_dim}, but the "
                 f"arguments ask for K={K}, T={T}, metadata_dim={M}; pass --component NAME "
                 "to train another one beside it")
    if M:
        model.set_metadata_stats(*metadata_stats(cache))
    if lora_rank:
        model.add_lora(lora_rank)
    model.to(runtime.device)
    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = warmup_cosine(optimizer, args.warmup, args.steps)
    resumed = load_checkpoint(ckpt_dir, model, optimizer, scheduler)
    start = resumed[0] if resumed else 0
    backbone_n = count_parameters(model.backbone)
    say(f"denoiser {config.backbone} stage {config.stage}: "
        f"{count_parameters(model) / 1e6:.2f}M parameters ({backbone_n / 1e6:.2f}M backbone, "
        f"{(count_parameters(model) - backbone_n) / 1e6:.3f}M conditioning), "
        f"{sum(p.numel() for p in params) / 1e6:.2f}M trained"
        + (f" (LoRA rank {lora_rank})" if lora_rank else "")
        + f"; K={K} T={T} latents {C}x{h}x{w}, {config.n_tokens} tokens, "
        f"{len(train_starts)} train windows" + (f"; resumed at step {start}" if start else ""),
        flush=True)
    wrapped = runtime.wrap(model, args.compile)

    def save(step: int) -> None:
        if runtime.is_main:
            save_checkpoint(ckpt_dir, model, optimizer, scheduler, step,
                            {"config": asdict(config), "lora_rank": lora_rank,
                             "args": asdict(args)})
            folder.save_component(component, model.merged(), config)
            if not folder.read_config().get("env_id") and cache.info.get("env_id"):
                folder.update(env_id=cache.info["env_id"])
        runtime.barrier()

    # -- train ----------------------------------------------------------------------------
    wrapped.train()
    bar = tqdm(total=args.steps, initial=start, disable=not runtime.is_main, dynamic_ncols=True)
    t0 = t5 = time.time()
    done = start  # the steps the component has had

    def windows(step: int) -> Windows:  # CPU work, made ahead in a thread (prefetch)
        return cache.sample(train_starts, args.batch_size, K, T, runtime.rng(args.seed, step),
                            np.float16, cdf, args.change_reweight)

    for step, made in prefetch(windows, range(start, args.steps)):
        batch = to_tensors(made, runtime.device)
        with runtime.autocast():
            loss, logs = wrapped(batch, generator=runtime.generator(args.seed, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        optimizer.step()
        scheduler.step()
        done = step + 1
        if done == args.exit_after:
            sys.stdout.flush()
            os._exit(3)  # as if killed: no checkpoint for this step
        bar.update(1)
        if done == start + 5:
            t5 = time.time()  # compilation and warm-up are over
        bar.set_postfix(loss=f"{runtime.mean(logs['loss']):.4f}",
                        gnorm=f"{float(grad_norm):.2f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        # every rank stops at the same step: any rank's clock past the limit stops all
        out_of_time = args.max_seconds > 0 and runtime.mean(
            float(time.time() - t0 > args.max_seconds)) > 0
        if done % args.checkpoint_every == 0 or done == args.steps or out_of_time:
            save(done)
        if out_of_time and done < args.steps:
            say(f"\nstopping at step {done} of {args.steps}: --max-seconds "
                f"{args.max_seconds:g} reached (the next call resumes)", flush=True)
            break
    bar.close()
    if start < args.steps:
        n, dt = done - start, time.time() - t0
        late = f"{(n - 5) / (time.time() - t5):.2f} steps/s after the first 5" if n > 5 else ""
        say(f"trained {n} steps in {dt:.1f} s ({late})", flush=True)
    else:  # nothing left to train: make sure the component is there
        save(args.steps)

    # -- evaluate -------------------------------------------------------------------------
    if runtime.is_main:
        result = evaluate(unwrap(wrapped), cache, args, runtime)
        result.update(component=component, stage=config.stage, backbone=config.backbone,
                      context=K, metadata=bool(M), action_encoding=config.action_encoding,
                      action_context=config.action_context, lora_rank=lora_rank,
                      steps=done, parameters=count_parameters(model),
                      cache=str(cache.root))
        atomic_write_json(Path(args.out) / f"{component}_eval.json", result)
        mses = ", ".join(f"{s} steps {v:.4f}" for s, v in result["mse"].items())
        print(f"test latent MSE over {result['test_windows']} windows x {T} frames: {mses}; "
              f"copy-last {result['copy_last_mse']:.4f}", flush=True)
    if runtime.distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
