"""Train the metadata predictor g_phi from a latent cache and evaluate it on the test split.

    python training/train_metadata.py --cache CACHE_DIR --out MODEL_DIR [--kind gru]
    torchrun --nproc_per_node 8 training/train_metadata.py --cache ... --out ...

Each step draws windows of W + 1 steps from the train split (m_{t-W-1} .. m_t, Z_{t-W} ..
Z_{t-1}, a_{t-W} .. a_{t-1}), supervises every step, and steps AdamW with warm-up + cosine
decay and gradient clipping. Checkpoints go to MODEL_DIR/train/<component>/ (resumed from
automatically, with the same batches), the weights to MODEL_DIR/<component>.safetensors.
At the end it measures one-step-ahead errors on every test window (raw scale: MAE per
variable, exact-match accuracy of categorical ones) beside the copy-previous baseline
m_t = m_{t-1}, prints a table and writes MODEL_DIR/<component>_eval.json. `--component`
keeps several variants (gru / lstm / transformer, classes or regression) in one folder.

`--rollout R` also trains g_phi in closed loop, as the dream runs it: each window is followed
by R-1 more calls that read the model's own earlier predictions as their newest metadata, and
with `--dream-steps S` the newest latents come from the folder's denoiser (S sampler steps)
instead of the recording, so that g_phi learns the recorded metadata from dreamt frames.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralgym.cli import parse_args
from neuralgym.data import atomic_write_json
from neuralgym.games import UnknownEnvError, get_spec
from neuralgym.games import class_counts as game_class_counts
from neuralgym.games import step_limits as game_step_limits
from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder, config_from_dict, count_parameters
from neuralgym.models.denoiser import Denoiser
from neuralgym.models.metadata import (
    EVENT_TOL,
    KINDS,
    REG_LOSSES,
    MetadataConfig,
    MetadataPredictor,
    cache_batch,
    classes_as_steps,
    hold_to_limits,
    jumps_absolute,
    metadata_stats,
    to_tensors,
    velocity_events,
    widen_classes,
    with_relative,
    with_step_classes,
    without_latents,
)
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
    """Train g_phi (the metadata predictor) from a latent cache."""

    cache: str = field(metadata={"help": "latent cache folder (training/prepare_latents.py)"})
    out: str = field(metadata={"help": "world-model folder to write the component into"})
    kind: str = field(default="gru", metadata={"help": "sequence backbone", "choices": KINDS})
    window: int | None = field(default=None, metadata={
        "help": "W: past steps the model sees per call (default: 8, or the folder's g_phi's "
                "when fine-tuning it; a GRU or LSTM fine-tune may take a longer one)"})
    hidden: int = field(default=256, metadata={"help": "hidden size of the backbone"})
    layers: int = field(default=2, metadata={"help": "backbone layers"})
    heads: int = field(default=4, metadata={"help": "attention heads (transformer)"})
    latent_width: int = field(default=32, metadata={"help": "channels of the latent conv stack"})
    latent_dim: int = field(default=128, metadata={"help": "latent feature size per step"})
    categorical_as_classes: bool = field(default=True, metadata={
        "help": "classify categorical variables (else regress them, and with --delta-classes "
                "classify their step change); --no-categorical-as-classes on a fine-tuned "
                "g_phi that classifies them turns them into step classes"})
    steps: int = field(default=5000, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=256, metadata={"help": "windows per step (per GPU)"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=200, metadata={"help": "linear warm-up steps"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    checkpoint_every: int = field(default=1000, metadata={"help": "checkpoint every N steps"})
    eval_windows: int = field(
        default=50_000, metadata={"help": "most test windows to evaluate (evenly spaced)"})
    eval_batch: int = field(default=1024, metadata={"help": "windows per evaluation batch"})
    rollout: int = field(default=1, metadata={
        "help": "R: calls per window, each after the last fed its own prediction back (closed "
                "loop, as in the dream); 1 = one teacher-forced window"})
    dream_steps: int = field(default=0, metadata={
        "help": "with --rollout > 1: the latents of the unrolled steps come from the folder's "
                "denoiser with this many sampler steps (0: the recorded latents)"})
    change_weight: float = field(default=1.0, metadata={
        "help": "weight of a classified variable's loss at the steps where it changes (a point "
                "scored), against 1 at the others: rare events count for more"})
    sync_tol: float = field(default=0.1, metadata={
        "help": "with --rollout > 1: a closed-loop step teaches g_phi only where the fed "
                "regressed variables are within this many standard deviations of the "
                "recording (elsewhere the recording's next step, a bounce or a point, is not "
                "the dream's); inf: every step"})
    event_weight: float = field(default=1.0, metadata={
        "help": "weight of a regressed variable's loss at its events, the steps where it "
                "departs from constant velocity (a ball bouncing off a paddle), against 1"})
    reg_loss: str = field(default="mse", metadata={
        "help": "loss of the regressed variables: mse (the mean) or l1 (the median, which "
                "keeps to the likelier of a bounce and a miss)", "choices": REG_LOSSES})
    delta_classes: int = field(default=0, metadata={
        "help": "D > 0: also classify each whole-number regressed variable's step change over "
                "-D..D (exact speeds; a bounce or a miss, not their mean), a larger jump left "
                "to the regression; fine-tuning a g_phi without these adds them; 0: a new "
                "g_phi has none, a fine-tuned one keeps what it has"})
    jump_absolute: bool = field(default=False, metadata={
        "help": "with step classes: a jump's regression gives m_t itself, not its change from "
                "m_{t-1} (a ball out of play goes to 0 wherever it was); fine-tuning a g_phi "
                "without it converts it (its jump regressions start at the mean)"})
    relative_classes: int = field(default=0, metadata={
        "help": "R > 0: the positions' pairwise differences and velocities are inputs too, "
                "each held to -R..R and looked up (a rule that turns on one pixel, such as a "
                "ball's angle off a paddle); fine-tuning a g_phi without them adds them (at "
                "zero); 0: a new g_phi has none, a fine-tuned one keeps what it has"})
    latent_input: bool = field(default=True, metadata={
        "help": "g_phi reads the latent frame Z_{t-1}; --no-latent-input: past metadata and "
                "actions only (a dreamt frame cannot then steer the metadata); fine-tuning a "
                "g_phi that reads frames drops its latent encoder, its mean feature over "
                "training frames folded into the input layer"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the batches"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda (default: cuda if any)"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA)"})
    exit_after: int = field(
        default=0, metadata={"help": "tests: exit(3) right after this step, saving nothing"})
    component: str = field(
        default="metadata", metadata={"help": "component name in the world-model folder"})
    fresh: bool = field(default=False, metadata={
        "help": "train a new g_phi even where --out has one (it is replaced at the first "
                "checkpoint); without it a committed g_phi is fine-tuned"})
    eval_only: bool = field(default=False, metadata={
        "help": "evaluate the folder's component on the cache's test split without training "
                "(writes <component>_eval.json with steps null)"})
    eval_rollout: int = field(default=0, metadata={
        "help": "R > 0: also evaluate g_phi in closed loop, R calls from each of "
                "--eval-rollout-windows windows, its changes of each classified variable (points "
                "paid) against the recording's and how far its positions drift: fed its own "
                "metadata over the recorded latents, and with --eval-dream-steps also over "
                "dreamt latents (with the recorded metadata, then with its own: as the dream)"})
    eval_rollout_windows: int = field(default=512, metadata={
        "help": "windows of the closed-loop evaluation (evenly spaced)"})
    eval_dream_steps: int = field(default=0, metadata={
        "help": "sampler steps of the folder's denoiser for the closed-loop evaluation's "
                "dreamt latents (0: recorded latents only)"})
    eval_split: str = field(default="test", metadata={
        "help": "split the evaluation reads: test, or all (a cache the component was not "
                "trained on, e.g. a new recording, with --eval-only)",
        "choices": ("test", "all")})


def metadata_kinds(info: dict, names: list[str]) -> tuple[str, ...]:
    """Kinds from info.json, else from the game spec of its env id, else all continuous."""
    if "metadata_kinds" in info:
        return tuple(info["metadata_kinds"])
    try:
        spec = get_spec(info.get("env_id", ""))
    except UnknownEnvError:
        spec = None
    if spec is not None and list(spec.metadata_names) == names:
        return tuple(v.kind for v in spec.metadata)
    print(f"note: no metadata kinds for {info.get('env_id')!r}; every variable is continuous")
    return ("continuous",) * len(names)


class DenoiserDream:
    """The next latent from the folder's denoiser, as `WorldModel.step` makes it (g_phi's
    `Dream`): context = the last K latents, the K actions after them, [m_{t-1}, m_t]."""

    def __init__(self, denoiser: Denoiser, steps: int, device: torch.device):
        self.denoiser, self.steps = denoiser, steps
        self.generator = torch.Generator(device)

    def __call__(self, latents: torch.Tensor, actions: torch.Tensor,
                 metadata: torch.Tensor) -> torch.Tensor:
        cfg = self.denoiser.config
        k = cfg.context
        if latents.shape[1] < k:
            raise ValueError(f"the denoiser reads {k} context latents; use --window >= {k}")
        meta = metadata if cfg.metadata_dim else None
        z = sample(self.denoiser, latents[:, -k:].float(), actions[:, -k:], meta, self.steps,
                   self.generator)  # (B, 1, C, h, w)
        return z[:, 0].float()


def mean_features(model: MetadataPredictor, cache: LatentCache, frames: np.ndarray, seed: int,
                  count: int = 1024, batch: int = 256) -> torch.Tensor:
    """g_phi's latent features (D,) averaged over `count` of the cache's `frames` (drawn with
    `seed`; all of them if fewer)."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(frames, min(count, len(frames)), replace=False))
    total = torch.zeros(model.config.latent_dim)
    with torch.no_grad():
        for i in range(0, len(pick), batch):
            z = torch.from_numpy(np.asarray(cache.latents[pick[i:i + batch]])).float()
            total += model.encode_latents(z[:, None])[:, 0].sum(0).cpu()  # (D,)
    return total / len(pick)


def step_limits_on(env_id: str | None, names: Sequence[str], device: torch.device
                   ) -> torch.Tensor | None:
    """The game's per-step limits (`GameSpec.step_limits`, (2, M)) on `device`, or None."""
    limits = game_step_limits(env_id, names)
    return None if limits is None else torch.as_tensor(limits, dtype=torch.float32,
                                                       device=device)


@dataclass(frozen=True)
class Conversion:
    """One change of a committed g_phi's architecture that the flags ask for (fine-tuning)."""

    convert: Callable[[MetadataPredictor], MetadataPredictor]  # the model itself: no change
    hint: str  # appended to the error a ValueError of `convert` becomes
    done: Callable[[MetadataPredictor, MetadataPredictor], str]  # (old, new): what changed


def conversions(args: Args) -> list[Conversion]:
    """The conversions the flags ask of a committed g_phi, in the order they apply."""
    def names(model: MetadataPredictor, idx: Sequence[int]) -> list[str]:
        return [model.config.metadata_names[i] for i in idx]

    out = []
    if args.delta_classes:
        out.append(Conversion(
            lambda m: with_step_classes(m, args.delta_classes), " (or leave --delta-classes at 0)",
            lambda _, new: f"added step classes over -{args.delta_classes}..{args.delta_classes} "
                           f"for {names(new, new.config.stepped)}"))
    if not args.categorical_as_classes:
        out.append(Conversion(
            lambda m: classes_as_steps(m) if m.classified else m, "",
            lambda old, _: f"{names(old, old.classified)} now predicted by their step change, "
                           "no longer by class"))
    if args.jump_absolute:
        out.append(Conversion(
            lambda m: m if m.config.jump_absolute else jumps_absolute(m), "",
            lambda _, new: f"the jumps of {names(new, new.config.stepped)} now regress their "
                           "value, no longer their change"))
    if args.relative_classes:
        out.append(Conversion(
            lambda m: with_relative(m, args.relative_classes),
            " (or leave --relative-classes at 0)",
            lambda _, new: f"added the differences and velocities of "
                           f"{names(new, new.config.relative)} over "
                           f"-{args.relative_classes}..{args.relative_classes} as inputs"))
    return out


def convert(model: MetadataPredictor, todo: Sequence[Conversion]) -> MetadataPredictor:
    """`model` through each conversion, each change printed; a conversion that cannot apply
    exits with its error."""
    for c in todo:
        try:
            new = c.convert(model)
        except ValueError as e:
            sys.exit(f"error: {e}{c.hint}")
        if new is not model:
            print(c.done(model, new))
            model = new
    return model


def make_dream(folder: ModelFolder, device: torch.device, steps: int) -> DenoiserDream:
    """The folder's trained denoiser, frozen, as the dream of `--dream-steps`."""
    if not folder.has("denoiser"):
        sys.exit(f"error: --dream-steps needs a trained denoiser in {folder.root}; train one "
                 "with training/train_denoiser.py first, or leave --dream-steps at 0")
    denoiser = Denoiser.from_folder(folder, "denoiser").to(device).eval().requires_grad_(False)
    if denoiser.config.frames_per_call != 1:
        sys.exit("error: --dream-steps needs a denoiser of one frame per call, this one makes "
                 f"{denoiser.config.frames_per_call}")
    return DenoiserDream(denoiser, steps, device)


def evaluate(model: MetadataPredictor, cache: LatentCache, args: Args,
             device: torch.device) -> dict:
    """One-step-ahead errors on `args.eval_split`, beside copy-previous (m_t = m_{t-1})."""
    c = model.config
    last = cache.window_starts(args.eval_split, c.window + 1, 1)
    if len(last) > args.eval_windows:
        last = last[np.linspace(0, len(last) - 1, args.eval_windows).round().astype(np.int64)]
    preds, means, truth, prev, prev2 = [], [], [], [], []
    model.eval()
    for k in range(0, len(last), args.eval_batch):
        b = cache_batch(cache, last[k:k + args.eval_batch], c.window, latents=c.latent_input)
        t = to_tensors(b, device)
        p, e = model.predict_expected(t["metadata"][:, :-1], t["latents"], t["actions"])
        preds.append(p.cpu())
        means.append(e.cpu())
        truth.append(b["metadata"][:, -1])
        prev.append(b["metadata"][:, -2])
        prev2.append(b["metadata"][:, -3])
    pred = torch.cat(preds).numpy().astype(np.float64)  # (N, M)
    mean = torch.cat(means).numpy().astype(np.float64)  # (N, M) expected values
    true = np.concatenate(truth).astype(np.float64)
    copy = np.concatenate(prev).astype(np.float64)
    before = np.concatenate(prev2).astype(np.float64)
    velocity = 2 * copy - before  # the constant-velocity guess
    std = np.asarray(c.std)
    result: dict = {"test_windows": int(len(last)), "split": args.eval_split, "variables": {}}
    for i, name in enumerate(c.metadata_names):
        row = {
            "kind": c.kinds[i],
            "classified": i in model.classified,
            "mae": float(np.abs(pred[:, i] - true[:, i]).mean()),
            "copy_mae": float(np.abs(copy[:, i] - true[:, i]).mean()),
            "changed": float((copy[:, i] != true[:, i]).mean()),
        }
        if i in model.stepped:  # jumps beyond -D..D (a serve, out of play): the regression's
            jump = np.abs(np.round(true[:, i] - copy[:, i])) > c.delta_classes  # as step_targets
            row["jump_windows"] = int(jump.sum())
            if jump.any():
                row["jump_mae"] = float(np.abs(pred[jump, i] - true[jump, i]).mean())
        if i in model.regressed:  # events: where constant velocity is wrong (a bounce)
            event = velocity_events(true[:, i], copy[:, i], before[:, i])
            row["velocity_mae"] = float(np.abs(velocity[:, i] - true[:, i]).mean())
            row["event_windows"] = int(event.sum())
            if event.any():
                row["event_mae"] = float(np.abs(pred[event, i] - true[event, i]).mean())
                row["event_velocity_mae"] = float(
                    np.abs(velocity[event, i] - true[event, i]).mean())
        if c.kinds[i] == "categorical":
            row["accuracy"] = float((pred[:, i] == true[:, i]).mean())
            row["copy_accuracy"] = float((copy[:, i] == true[:, i]).mean())
            moved = copy[:, i] != true[:, i]  # the rare steps that matter (a point scored)
            row["changed_windows"] = int(moved.sum())
            if moved.any():  # accuracy where m_t != m_{t-1} (copy-previous gets 0 there)
                row["changed_accuracy"] = float((pred[moved, i] == true[moved, i]).mean())
            if i in model.classified:  # what an expected-value reward would pay
                row["change_sum"] = float((true[:, i] - copy[:, i]).sum())
                row["expected_change_sum"] = float((mean[:, i] - copy[:, i]).sum())
                row["argmax_change_sum"] = float((pred[:, i] - copy[:, i]).sum())
                if moved.any():
                    row["expected_change_at_changes"] = float(
                        (mean[moved, i] - copy[moved, i]).mean())
            # by the value it was fed (classified or stepped): windows, g_phi's changes, the
            # recording's
            row["changes_by_value"] = {
                str(int(v)): [int(at.sum()), int((pred[at, i] != v).sum()),
                              int((true[at, i] != v).sum())]
                for v in np.unique(copy[:, i]) for at in [copy[:, i] == v]}
        result["variables"][name] = row
    result["normalised_mae"] = float((np.abs(pred - true) / std).mean())
    result["copy_normalised_mae"] = float((np.abs(copy - true) / std).mean())
    return result


CLOSED_LOOP_MODES = {  # mode -> (g_phi reads its own metadata, the latents are dreamt)
    "own metadata": (True, False),
    "dreamt latents": (False, True),
    "dream": (True, True),
}


@torch.no_grad()
def evaluate_closed_loop(model: MetadataPredictor, cache: LatentCache, args: Args,
                         device: torch.device, dream: DenoiserDream | None,
                         limits: torch.Tensor | None) -> dict:
    """g_phi over `args.eval_rollout` calls from real windows, each call reading the newest
    metadata and latents of a mode (`CLOSED_LOOP_MODES`; the dreamt ones need `dream`):
    per categorical variable the changes it makes against the recording's changes at the same
    steps, per regressed variable its mean absolute drift from the recording at the last call,
    per stepped variable its error where the recording jumps (beyond -D..D) from a state in
    sync (a serve, a ball out of play: the jump's regression), and the share of steps in sync
    (`MetadataPredictor.in_sync`, `args.sync_tol` std). Fed-back predictions are held to the
    game's step `limits` (2, M), as the dream holds them."""
    c, rollout = model.config, args.eval_rollout
    w = c.window
    last = cache.window_starts(args.eval_split, w + 1, rollout)
    if len(last) > args.eval_rollout_windows:
        pick = np.linspace(0, len(last) - 1, args.eval_rollout_windows).round().astype(np.int64)
        last = last[pick]
    model.eval()
    modes = [m for m, (_, dreamt) in CLOSED_LOOP_MODES.items() if dream is not None or not dreamt]
    result: dict = {"rollout": rollout, "windows": int(len(last)), "split": args.eval_split,
                    "dream_steps": args.eval_dream_steps if dream is not None else 0,
                    "modes": {}}
    # points: every categorical variable, classified or stepped; drift: the regressed ones
    cls = tuple(i for i, k in enumerate(c.kinds) if k == "categorical")
    reg = model.regressed
    for mode in modes:
        own, dreamt = CLOSED_LOOP_MODES[mode]
        made = torch.zeros(len(cls))  # changes g_phi made
        real = torch.zeros(len(cls))  # changes the recording made at the same steps
        false = torch.zeros(len(cls))  # g_phi's changes where the recording made none
        drift = torch.zeros(len(reg))  # |fed - recorded| summed at the last call
        stepped = model.stepped
        jumps = torch.zeros(len(stepped))  # in-sync steps where the recording jumps
        jump_err = torch.zeros(len(stepped))  # |g_phi's m_t - recorded m_t| summed there
        sync = 0.0
        bar = tqdm(total=len(last) * rollout, desc=f"closed loop, {mode}", unit="step",
                   dynamic_ncols=True)
        for k in range(0, len(last), args.eval_batch):
            t = to_tensors(cache_batch(cache, last[k:k + args.eval_batch], w, rollout,
                                       latents=model.config.latent_input), device)
            rec, acts = t["metadata"].float(), t["actions"]  # (B, W+1+R, M), (B, W+R-1)
            fed, lat = rec[:, :w + 1], t["latents"][:, :w].float()  # (B, W+1, M), (B, W, ...)
            for r in range(rollout):
                pred = model.predict(fed[:, -(w + 1):], lat[:, -w:], acts[:, r:r + w]).float()
                if limits is not None:
                    pred = hold_to_limits(pred, fed[:, -1], limits)  # (B, M)
                before, now = rec[:, w + r], rec[:, w + r + 1]  # (B, M) recorded m_{t-1}, m_t
                moved, changed = pred[:, cls] != fed[:, -1, cls], now[:, cls] != before[:, cls]
                made += moved.sum(0).cpu()
                real += changed.sum(0).cpu()
                false += (moved & ~changed).sum(0).cpu()
                in_sync = model.in_sync(fed[:, -1], before, args.sync_tol)  # (B,)
                sync += float(in_sync.float().sum())
                if stepped:  # where the recording jumps beyond -D..D from a state in sync
                    at = (model.step_targets(now[:, stepped] - before[:, stepped])
                          == c.step_classes - 1) & in_sync[:, None]  # (B, S)
                    jumps += at.sum(0).cpu()
                    jump_err += ((pred[:, stepped] - now[:, stepped]).abs() * at).sum(0).cpu()
                fed = torch.cat([fed, (pred if own else now)[:, None]], 1)
                if r == rollout - 1:
                    drift += (fed[:, -1, reg] - now[:, reg]).abs().sum(0).cpu()
                elif dreamt:  # Z_{t+r} from the denoiser, conditioned on [m_{t+r-1}, m_{t+r}]
                    z = dream(lat, acts[:, :lat.shape[1]], fed[:, -2:])
                    lat = torch.cat([lat, z[:, None]], 1)
                else:
                    lat = t["latents"][:, :w + r + 1].float()
                bar.update(len(rec))
        bar.close()
        steps = len(last) * rollout
        result["modes"][mode] = {
            "steps": steps, "in_sync": sync / steps,
            "variables": {name: {} for name in c.metadata_names},
        }
        for j, i in enumerate(cls):
            result["modes"][mode]["variables"][c.metadata_names[i]].update(
                changes=float(made[j]), recorded_changes=float(real[j]),
                false_changes=float(false[j]))
        for j, i in enumerate(reg):
            result["modes"][mode]["variables"][c.metadata_names[i]]["last_call_mae"] = \
                float(drift[j]) / len(last)
        for j, i in enumerate(stepped):
            result["modes"][mode]["variables"][c.metadata_names[i]].update(
                jumps=int(jumps[j]),
                jump_mae=float(jump_err[j] / jumps[j]) if jumps[j] else None)
    return result


def print_closed_loop(result: dict) -> None:
    print(f"\nclosed loop: {result['rollout']} calls from each of {result['windows']} "
          f"{result['split']} windows (dreamt latents: {result['dream_steps']} sampler steps)")
    for mode, r in result["modes"].items():
        parts = []
        for name, v in r["variables"].items():
            if "changes" in v:
                parts.append(f"{name} changes {v['changes']:.0f} (false {v['false_changes']:.0f})"
                             f" where the recording has {v['recorded_changes']:.0f}")
            else:
                parts.append(f"{name} MAE {v['last_call_mae']:.3g}")
            if v.get("jump_mae") is not None:
                parts[-1] += f" (at {v['jumps']} jumps {v['jump_mae']:.3g})"
        print(f"{mode}: in sync {r['in_sync']:.3f} of steps; " + "; ".join(parts), flush=True)


def print_table(result: dict) -> None:
    split = result.get("split", "test")
    print(f"\none-step-ahead on {result['test_windows']} {split} windows (raw scale)")
    print(f"{'variable':<20} {'kind':<12} {'MAE':>10} {'copy MAE':>10} {'acc':>7} "
          f"{'copy acc':>8} {'changed':>8} {'acc changed':>14}")
    for name, r in result["variables"].items():
        kind = r["kind"] + ("*" if r["classified"] else "")
        acc = f"{r['accuracy']:7.3f}" if "accuracy" in r else f"{'':7}"
        cacc = f"{r['copy_accuracy']:8.3f}" if "copy_accuracy" in r else f"{'':8}"
        moved = (f"{r['changed_accuracy']:.3f} of {r['changed_windows']}"
                 if "changed_accuracy" in r else "")
        print(f"{name:<20} {kind:<12} {r['mae']:10.4g} {r['copy_mae']:10.4g} {acc} {cacc} "
              f"{r['changed']:8.3f} {moved:>14}")
    for name, r in result["variables"].items():
        if "expected_change_sum" in r:
            at = r.get("expected_change_at_changes")
            print(f"{name}: changes summed over the windows: real {r['change_sum']:.4g}, "
                  f"predicted (argmax) {r['argmax_change_sum']:.4g}, expected "
                  f"{r['expected_change_sum']:.4g}"
                  + (f" ({at:.3g} on average where it changed)" if at is not None else ""))
        if "changes_by_value" in r:
            print(f"{name}: by the value fed (windows: changes by g_phi / by the recording): "
                  + ", ".join(f"{v} ({n}: {made} / {real})"
                              for v, (n, made, real) in r["changes_by_value"].items()))
        if "jump_mae" in r:
            print(f"{name}: at its {r['jump_windows']} jumps (beyond the step classes): MAE "
                  f"{r['jump_mae']:.4g}")
        if "event_mae" in r:
            print(f"{name}: at its {r['event_windows']} events (constant velocity off by more "
                  f"than {EVENT_TOL}): MAE {r['event_mae']:.4g}, constant velocity's "
                  f"{r['event_velocity_mae']:.4g}; constant velocity's MAE overall "
                  f"{r['velocity_mae']:.4g}")
    print(f"{'mean MAE / std':<33} {result['normalised_mae']:10.4g} "
          f"{result['copy_normalised_mae']:10.4g}")
    print("(* = predicted as classes; changed = share of steps where m_t != m_{t-1}; acc "
          "changed = accuracy on those steps, of how many)", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    runtime = setup_runtime(args.device)
    torch.manual_seed(args.seed)

    # -- data -----------------------------------------------------------------------------
    try:
        cache = LatentCache(args.cache)
    except (FileNotFoundError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    info = cache.info
    n_meta = cache.metadata.shape[1]
    names = list(info.get("metadata_names") or [f"m{i}" for i in range(n_meta)])
    if len(names) != n_meta:
        sys.exit(f"error: {cache.root}/info.json names {len(names)} metadata variables, "
                 f"the arrays hold {n_meta}")
    folder = ModelFolder(args.out)
    if args.eval_rollout < 0 or args.eval_dream_steps < 0 or (
            args.eval_dream_steps and not args.eval_rollout):
        sys.exit("error: --eval-rollout and --eval-dream-steps must be at least 0, and "
                 "--eval-dream-steps needs --eval-rollout")
    if args.eval_only:  # the folder's component as it is: no statistics, no training windows
        if not folder.has(args.component):
            sys.exit(f"error: {args.out} has no {args.component} component to evaluate; "
                     "train one first (without --eval-only)")
        model = MetadataPredictor(folder.component_config(args.component, MetadataConfig))
        folder.load_component(args.component, model)
        if runtime.is_main:
            write_eval(model.to(runtime.device), cache, args, runtime.device, steps=None)
        return
    if not cache.has_latents and args.latent_input:
        sys.exit(f"error: {cache.root} holds metadata and actions only (no latents): train a "
                 "g_phi that reads no frames (--no-latent-input)")
    if args.jump_absolute and args.delta_classes <= 0 and not folder.has(args.component):
        sys.exit("error: --jump-absolute needs step classes: give --delta-classes D too")
    if (args.rollout < 1 or args.dream_steps < 0 or args.change_weight <= 0
            or args.event_weight <= 0 or not args.sync_tol >= 0):
        sys.exit("error: --rollout must be at least 1, --dream-steps at least 0, "
                 "--change-weight and --event-weight above 0, --sync-tol at least 0")
    if args.dream_steps and args.rollout == 1:
        sys.exit("error: --dream-steps needs --rollout > 1 (the first call reads recorded "
                 "latents only)")
    dream = make_dream(folder, runtime.device, args.dream_steps) if args.dream_steps else None
    # closed loop: the fed-back predictions keep to the game's per-step limits, as in the dream
    step_limits = step_limits_on(info.get("env_id"), names, runtime.device) \
        if args.rollout > 1 else None
    ckpt_dir = Path(args.out) / "train" / args.component
    state_file = ckpt_dir / "checkpoint" / "state.json"
    # a resumed run keeps the config it started with
    saved = json.loads(state_file.read_text())["extra"].get("config") \
        if state_file.exists() else None
    # weights an earlier session committed, to fine-tune: their config
    committed = folder.component_config(args.component, MetadataConfig) \
        if not state_file.exists() and folder.has(args.component) and not args.fresh else None
    window = saved["window"] if saved is not None else args.window or (
        committed.window if committed is not None else 8)
    if committed is not None and window != committed.window and committed.kind == "transformer":
        sys.exit(f"error: the transformer g_phi in {args.out} has positions for "
                 f"{committed.window} steps; fine-tune it at --window {committed.window}, or "
                 "train a new one (--fresh)")
    try:
        train_last = cache.window_starts("train", window + 1, args.rollout)
        cache.window_starts(args.eval_split, window + 1, 1)  # fail now, not after training
    except ValueError as e:
        sys.exit(f"error: {e} (or lower --window)")

    # -- model ----------------------------------------------------------------------------
    kinds = metadata_kinds(info, names)
    stats = metadata_stats(cache, kinds, game_class_counts(info.get("env_id"), names))
    for note in stats.notes:
        print("note:", note)
    n_actions = info.get("n_actions")
    if n_actions is None:
        try:
            n_actions = get_spec(info.get("env_id", "")).n_actions
        except UnknownEnvError:
            n_actions = int(np.asarray(cache.actions).max()) + 1
    c, h, w = cache.latent_shape
    if saved is not None:  # a resumed run: the config it started with
        config = config_from_dict(MetadataConfig, saved)
    elif committed is not None:  # weights an earlier session committed: their architecture
        config = replace(committed, window=window)  # and classes; a GRU/LSTM reads any length
    else:  # a new g_phi
        config = MetadataConfig(
            metadata_names=tuple(names), kinds=kinds, num_classes=tuple(stats.num_classes),
            mean=tuple(stats.mean), std=tuple(stats.std), integer=tuple(stats.integer),
            n_actions=int(n_actions),
            latent_channels=c, latent_hw=(h, w), kind=args.kind, hidden=args.hidden,
            layers=args.layers, heads=args.heads, window=window,
            latent_width=args.latent_width, latent_dim=args.latent_dim,
            categorical_as_classes=args.categorical_as_classes,
            delta_classes=args.delta_classes, jump_absolute=args.jump_absolute,
            latent_input=args.latent_input, relative_classes=args.relative_classes,
        )
    model = MetadataPredictor(config)
    if committed is not None:
        folder.load_component(args.component, model)
        print(f"fine-tuning the {args.component} in {args.out} (architecture from its "
              "config.json" + (f"; window {committed.window} -> {window}"
                               if window != committed.window else "") + ")")
        wide = widen_classes(model, stats.num_classes)
        if wide is not model:  # the data or the game have values it has no class for
            print(f"widened its classes from {list(config.num_classes)} to "
                  f"{list(wide.config.num_classes)}")
            model, config = wide, wide.config
        model = convert(model, conversions(args))
        config = model.config
        if not args.latent_input and config.latent_input:
            if not cache.has_latents:
                sys.exit(f"error: the {args.component} in {args.out} reads frames; dropping them "
                         f"folds in its mean latent feature, which {cache.root} (metadata only) "
                         "cannot give: use a cache with latents, or --fresh for a new g_phi")
            model = without_latents(model, mean_features(model, cache, train_last, args.seed))
            config = model.config
            print("g_phi no longer reads the latent frames (their mean feature folded in)")
    if dream is not None and not config.latent_input:
        print("note: g_phi reads no latent frames; --dream-steps has nothing to dream")
        dream = None
    model = model.to(runtime.device)  # first: a resumed optimizer's state follows the weights
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                  weight_decay=args.weight_decay)
    scheduler = warmup_cosine(optimizer, args.warmup, args.steps)
    resumed = load_checkpoint(ckpt_dir, model, optimizer, scheduler)
    start = resumed[0] if resumed else 0
    if runtime.is_main:
        print(f"g_phi {config.kind}: {count_parameters(model) / 1e6:.2f}M parameters, "
              f"{len(names)} variables ({', '.join(names)}), classes "
              f"{[config.metadata_names[i] for i in config.classified]}, "
              f"{len(train_last)} train windows" + (f"; resumed at step {start}" if start else ""),
              flush=True)
    wrapped = runtime.wrap(model, args.compile)
    folder = ModelFolder(args.out)

    def save(step: int) -> None:
        if runtime.is_main:
            save_checkpoint(ckpt_dir, model, optimizer, scheduler, step,
                            {"config": asdict(config), "args": asdict(args)})
            folder.save_component(args.component, unwrap(wrapped), config)
            if not folder.read_config().get("env_id") and info.get("env_id"):
                folder.update(env_id=info["env_id"])
        runtime.barrier()

    # -- train ----------------------------------------------------------------------------
    wrapped.train()
    bar = tqdm(total=args.steps, initial=start, disable=not runtime.is_main, dynamic_ncols=True)
    t0 = time.time()
    def windows(step: int) -> dict[str, np.ndarray]:  # CPU work, made ahead (prefetch)
        rng = runtime.rng(args.seed, step)
        last = train_last[rng.integers(0, len(train_last), args.batch_size)]
        return cache_batch(cache, last, config.window, args.rollout, dreamt=dream is not None,
                           latents=config.latent_input)

    for step, made in prefetch(windows, range(start, args.steps)):
        batch = to_tensors(made, runtime.device)
        if dream is not None:  # the same noise when a resumed run repeats this step
            dream.generator.manual_seed(args.seed * 1_000_003 + step)
        with runtime.autocast():
            loss, logs = wrapped(batch, args.rollout, dream, step_limits, args.change_weight,
                                 args.event_weight, args.reg_loss, args.sync_tol)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(wrapped.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        done = step + 1
        if done == args.exit_after:
            os._exit(3)  # as if killed: no checkpoint for this step
        bar.update(1)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", gnorm=f"{float(grad_norm):.2f}",
                        lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if done % args.checkpoint_every == 0 or done == args.steps:
            save(done)
            if runtime.is_main:  # a line the logs keep (the bar's postfix is overwritten)
                sync = f", in sync {logs['in_sync']:.2f}" if "in_sync" in logs else ""
                tqdm.write(f"step {done}: loss {logs['loss']:.4f}{sync}")
    bar.close()
    if start < args.steps and runtime.is_main:
        print(f"trained {args.steps - start} steps in {time.time() - t0:.1f} s", flush=True)
    if start >= args.steps:  # nothing left to train: make sure the component is there
        save(args.steps)

    # -- evaluate -------------------------------------------------------------------------
    if runtime.is_main:
        write_eval(model, cache, args, runtime.device, steps=args.steps)
    if runtime.distributed:
        torch.distributed.destroy_process_group()


def write_eval(model: MetadataPredictor, cache: LatentCache, args: Args, device: torch.device,
               steps: int | None) -> None:
    """Evaluate on the test split, write OUT/<component>_eval.json and print the table."""
    config = model.config
    result = evaluate(model, cache, args, device)
    if args.eval_rollout > 0:
        folder = ModelFolder(args.out)
        # a g_phi that reads no frames gives the same numbers over dreamt latents: none made
        dream = make_dream(folder, device, args.eval_dream_steps) \
            if args.eval_dream_steps and config.latent_input else None
        result["closed_loop"] = evaluate_closed_loop(
            model, cache, args, device, dream,
            step_limits_on(cache.info.get("env_id"), config.metadata_names, device))
    result.update(component=args.component, kind=config.kind, window=config.window,
                  steps=steps, categorical_as_classes=config.categorical_as_classes,
                  parameters=count_parameters(model), cache=str(cache.root))
    atomic_write_json(Path(args.out) / f"{args.component}_eval.json", result)
    print_table(result)
    if "closed_loop" in result:
        print_closed_loop(result["closed_loop"])


if __name__ == "__main__":
    main()
