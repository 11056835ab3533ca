"""Paired rollouts: the real game and each predictor from the same state, with the same actions.

For every start step t of the test episodes that has a saved emulator state, the real env is
restored to that state and fed the recorded actions a_t .. a_{t+L-1}; each predictor gets the
same K real context frames o_{t-K+1} .. o_t (with their metadata and the actions between them)
and the same future actions, and predicts o_{t+1} .. o_{t+L}. Frames are compared per horizon
h with the metrics of `neuralgym.metrics` (MSE, PSNR, SSIM, LPIPS; bootstrap 95% CIs over
starts). The copy-last-frame baseline is always reported.

The predictors' metadata are compared in closed loop too: each predictor also returns the
game variables it predicts, m_{t+1} .. m_{t+L} (`rollout_with_metadata`; a world model's come
from its own predictions, step after step), and the real env's `info["metadata"]` after each
step are the truth. Per horizon h: the MAE of each variable on the raw scale; the reward summed
over steps 1..h by the game's own rule (`GameSpec.rewards(prev, cur)`, prev of step 1 being
the last context metadata m_t) on the predicted and on the real metadata, and the mean
|predicted sum - real sum|; and the share of starts where "the episode ended at or before h"
(`GameSpec.terminations`) differs between prediction and reality. Copy-last keeps m_t, so its
rewards are 0 and its reward error is the mean |real reward sum|: the baseline for reward
error.

    python benchmarks/paired_rollout.py --env NeuralBreakout-v0 --data DATA \\
        --predictor copy-last default runs/wm --horizons 1 2 4 8 16 32 64 \\
        --json out/paired.json --video out/paired.mp4

Output: a JSON file (layout in `build_report`) and two markdown tables on stdout (frames;
metadata and rewards); optionally a side-by-side video (real | predictor | amplified
|difference| per predictor, h = 1..L).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.data import Dataset, Episode, atomic_write_json, frames_of
from neuralgym.games import GameSpec, UnknownEnvError, get_spec
from neuralgym.metrics import LPIPSMetric, frame_metrics, summarize_frame_metrics
from neuralgym.metrics import summarize as summarize_values
from neuralgym.model_folder import ModelFolderError
from neuralgym.predictors import NoModelError, Predictor, load_predictor
from neuralgym.world_model import WorldModel

BASELINE = "copy-last"


@dataclass
class Args:
    env: str = field(metadata={"help": "Neural env id, e.g. NeuralBreakout-v0; must be the "
                                       "dataset's env id"})
    data: Path = field(metadata={"help": "dataset folder (episodes with saved emulator states)"})
    json: Path = field(metadata={"help": "where to write the results (JSON)"})
    predictor: list[str] = field(default_factory=lambda: [BASELINE], metadata={
        "help": "predictors: 'copy-last', 'default' (the env's shipped model) or a world-model "
                "folder; copy-last is always added"})
    horizons: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64], metadata={
        "help": "horizons h (steps after the start) at which frames are compared"})
    split: str = field(default="test", metadata={"help": "dataset split",
                                                  "choices": ["test", "train", "all"]})
    episodes: int = field(default=100, metadata={"help": "use at most this many episodes"})
    starts_per_episode: int = field(default=4, metadata={
        "help": "at most this many start steps per episode (evenly spaced saved states)"})
    batch_size: int = field(default=16, metadata={"help": "starts per predictor call"})
    seed: int = field(default=0, metadata={"help": "seed of the predictors' samplers"})
    device: str = field(default="cpu", metadata={"help": "torch device for predictors, LPIPS"})
    video: Path | None = field(default=None, metadata={
        "help": "write a side-by-side video here (.mp4, or .gif)"})
    video_starts: int = field(default=4, metadata={"help": "starts shown in the video"})
    video_fps: int = field(default=8, metadata={"help": "frames per second of the video"})
    diff_gain: float = field(default=4.0, metadata={
        "help": "the video's |prediction - real| panel is multiplied by this"})
    per_start: bool = field(default=False, metadata={
        "help": "also write each start's metric values (for paired comparisons)"})
    denoising_steps: int | None = field(default=None, metadata={
        "help": "sampler steps per model call of every world-model predictor (default: each "
                "model's own, what its env uses)"})
    decoder: str = field(default="auto", metadata={
        "help": "what decodes every world-model predictor's frames: the decoder its folder "
                "chooses (auto, what its env uses), the VAE's (vae), or the folder's fast one "
                "(fast)", "choices": ["auto", "vae", "fast"]})
    bf16_weights: bool = field(default=False, metadata={
        "help": "hold every world-model predictor's denoiser backbone and fast decoder in bf16 "
                "(WorldModel.hold_in_bf16), to measure what that costs in fidelity"})


class BenchmarkError(Exception):
    """A problem with the inputs, explained to the user."""


def check_args(args: Args) -> None:
    if any(h < 1 for h in args.horizons):
        raise BenchmarkError(f"--horizons must be positive, got {args.horizons}")
    for name in ("episodes", "starts_per_episode", "batch_size"):
        if getattr(args, name) < 1:
            raise BenchmarkError(f"--{name.replace('_', '-')} must be at least 1")
    if args.denoising_steps is not None and args.denoising_steps < 1:
        raise BenchmarkError(f"--denoising-steps must be at least 1, got {args.denoising_steps}")
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".gif"):
        raise BenchmarkError(f"--video must end in .mp4 or .gif, got {args.video}")
    try:
        get_spec(args.env)
    except UnknownEnvError as e:
        raise BenchmarkError(str(e)) from None


# -- predictors -------------------------------------------------------------------------------


def load_predictors(names: list[str], env_id: str, device: str, decoder: str = "auto"
                    ) -> dict[str, Predictor]:
    """Load each predictor (copy-last first, always); report and skip those without a model."""
    predictors: dict[str, Predictor] = {}
    for name in dict.fromkeys([BASELINE, *names]):  # ordered, without duplicates
        try:
            predictors[name] = load_predictor(name, env_id, device=device, decoder=decoder)
        except NoModelError as e:
            print(f"\n*** predictor {name!r} skipped: {e}\n", file=sys.stderr, flush=True)
        except ModelFolderError as e:  # a folder that is not a usable model (or lacks --decoder)
            raise BenchmarkError(f"predictor {name!r}: {e}") from None
    return predictors


# -- starts -----------------------------------------------------------------------------------


def start_steps(episode: Episode, context: int, horizon: int, limit: int) -> list[int]:
    """Saved-state steps t with t >= K-1 and t + L <= len(episode), at most `limit`, evenly
    spaced and deterministic."""
    fits = sorted(t for t in episode.states if t >= context - 1 and t + horizon <= len(episode))
    if len(fits) <= limit:
        return fits
    picks = np.unique(np.linspace(0, len(fits) - 1, limit).round().astype(int))
    return [fits[i] for i in picks]


def pick_starts(dataset: Dataset, args: Args, context: int) -> list[tuple[str, Episode, int]]:
    """(episode name, episode, t) for up to --episodes episodes that have a start that fits."""
    refs = dataset.split(args.split)
    if not refs:
        raise BenchmarkError(f"split {args.split!r} of {dataset.root} has no episodes; "
                             "pass --split all, or record more episodes")
    horizon = max(args.horizons)
    starts: list[tuple[str, Episode, int]] = []
    used = 0
    for ref in refs:
        if used == args.episodes:
            break
        if ref.length < horizon + context - 1:
            continue
        episode = dataset.load(ref)
        steps = start_steps(episode, context, horizon, args.starts_per_episode)
        starts += [(ref.name, episode, t) for t in steps]
        used += bool(steps)
    if not starts:
        longest = max(r.length for r in refs)
        raise BenchmarkError(
            f"no start fits: a start needs a saved state at a step t >= {context - 1} "
            f"(context K = {context}) with t + {horizon} (the largest horizon) <= the episode's "
            f"length, and the longest episode of split {args.split!r} in {dataset.root} has "
            f"{longest} steps. Record longer episodes (or save states more often), or pass "
            "smaller --horizons."
        )
    return starts


# -- real rollouts ----------------------------------------------------------------------------


def replay(env: Any, episode: Episode, t: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Restore the real env at step t, play the recorded actions; the real frames
    (L, H, W, 3) uint8 and metadata (L, M) float32 after each step (`info["metadata"]`)."""
    env.set_state(episode.states[t])
    steps = [env.step(int(a)) for a in episode.actions[t : t + length]]
    return (np.stack([s[0] for s in steps]).astype(np.uint8),
            np.stack([s[4]["metadata"] for s in steps]).astype(np.float32))


def context_batch(batch: list[tuple[str, Episode, int]], context: int, length: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Recorded context of each start: frames (B, K, H, W, 3), metadata (B, K, M),
    past actions (B, K-1), future actions (B, L)."""
    frames = np.stack([frames_of(ep, name)[t - context + 1 : t + 1] for name, ep, t in batch])
    metadata = np.stack([ep.metadata[t - context + 1 : t + 1] for _, ep, t in batch])
    past = np.stack([ep.actions[t - context + 1 : t] for _, ep, t in batch]).astype(np.int64)
    future = np.stack([ep.actions[t : t + length] for _, ep, t in batch]).astype(np.int64)
    return frames, metadata.astype(np.float32), past, future


def predict(predictor: Predictor, frames: np.ndarray, metadata: np.ndarray, past: np.ndarray,
            future: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The predictor's rollout from its own last k <= K context frames: frames
    (B, L, H, W, 3) uint8 and metadata (B, L, M) float32."""
    k = predictor.context
    out, meta = predictor.rollout_with_metadata(
        frames[:, -k:], metadata[:, -k:], past[:, past.shape[1] - (k - 1):], future, seed)
    want = (*future.shape, *frames.shape[2:])
    if out.shape != want or out.dtype != np.uint8:
        raise RuntimeError(f"predictor {predictor.name!r} returned {out.shape} {out.dtype}, "
                           f"expected {want} uint8")
    want = (*future.shape, metadata.shape[2])
    if meta.shape != want:
        raise RuntimeError(f"predictor {predictor.name!r} returned metadata {meta.shape}, "
                           f"expected {want}")
    return out, np.asarray(meta, np.float32)


# -- metadata and rewards, closed loop --------------------------------------------------------


class _Watched(Mapping[str, np.ndarray]):
    """A `Fields` view that notes the names a rule reads."""

    def __init__(self, fields: Mapping[str, np.ndarray], read: set[str]) -> None:
        self.fields, self.read = fields, read

    def __getitem__(self, name: str) -> np.ndarray:
        self.read.add(name)
        return self.fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


def rule_variables(spec: GameSpec) -> list[str]:
    """The metadata variables the game's reward and episode-end rules read (Breakout: score,
    lives; Pong: both scores; Sonic: x, lives, zone, act): those whose errors become reward
    and episode-end errors."""
    read: set[str] = set()
    fields = spec.fields(np.zeros(len(spec.metadata), np.float32))
    for rule in (spec.reward, spec.terminated):
        rule(_Watched(fields, read), _Watched(fields, read))
    return [name for name in spec.metadata_names if name in read]


def closed_loop(spec: GameSpec, last: np.ndarray, metadata: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """By the game's rules on m_t = `last` (N, M) followed by m_{t+1} .. m_{t+L} = `metadata`
    (N, L, M): the reward summed over steps 1..h (N, L) float64 and whether the episode ended
    at or before h (N, L) bool, for h = 1..L."""
    prev = np.concatenate([last[:, None], metadata[:, :-1]], 1)  # (N, L, M) m_t .. m_{t+L-1}
    rewards = np.cumsum(spec.rewards(prev, metadata), axis=1, dtype=np.float64)
    ended = np.logical_or.accumulate(spec.terminations(prev, metadata), axis=1)
    return rewards, ended


def metadata_metrics(spec: GameSpec, last: np.ndarray, real: np.ndarray, pred: np.ndarray,
                     horizons: list[int], per_start: bool) -> dict[str, Any]:
    """A predictor's `metadata` block of the JSON (layout in `build_report`) from the last
    context metadata (N, M), the real (N, L, M) and the predicted metadata (N, L, M) of N
    starts; with `per_start`, each start's |reward-sum error| too (in start order)."""
    real_sum, real_end = closed_loop(spec, last, real)
    pred_sum, pred_end = closed_loop(spec, last, pred)
    error = np.abs(pred.astype(np.float64) - real)  # (N, L, M)
    out: dict[str, Any] = {}
    for h in horizons:
        i = h - 1
        reward_error = np.abs(pred_sum[:, i] - real_sum[:, i])
        out[str(h)] = {
            "mae": {name: summarize_values(error[:, i, j])
                    for j, name in enumerate(spec.metadata_names)},
            "reward_sum": {"real": summarize_values(real_sum[:, i]),
                           "predicted": summarize_values(pred_sum[:, i]),
                           "abs_error": summarize_values(reward_error)},
            "episode_end": {"mismatch": summarize_values(pred_end[:, i] != real_end[:, i]),
                            "real": float(real_end[:, i].mean()),
                            "predicted": float(pred_end[:, i].mean())},
        }
        if per_start:
            out[str(h)]["reward_sum"]["abs_error"]["per_start"] = reward_error.tolist()
    return {"rule_variables": rule_variables(spec), "horizons": out}


# -- report -----------------------------------------------------------------------------------


def concat(parts: list[dict[str, Any]]) -> dict[str, np.ndarray | None]:
    """Join the per-batch outputs of `frame_metrics` into one per-frame dict."""
    return {key: None if parts[0][key] is None else np.concatenate([p[key] for p in parts])
            for key in parts[0]}



def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def machine(device: str) -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "device": device, "gpu": gpu}


def fmt(summary: dict[str, Any], digits: int, ci: bool = False) -> str:
    if summary.get("mean") is None:
        return "not measured"
    text = f"{summary['mean']:.{digits}f}"
    return text + (" [{:.{d}f}, {:.{d}f}]".format(*summary["ci95"], d=digits) if ci else "")


def markdown_table(predictors: dict[str, Any]) -> str:
    rows = ["| predictor | h | MSE [95% CI] | PSNR (of mean MSE) | PSNR (per frame) | SSIM "
            "| LPIPS |", "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for name, result in predictors.items():
        for h, s in result["horizons"].items():
            rows.append(f"| {name} | {h} | {fmt(s['mse'], 2, ci=True)} | "
                        f"{fmt(s['psnr_of_mean_mse'], 2)} | {fmt(s['psnr_mean_per_frame'], 2)} | "
                        f"{fmt(s['ssim'], 4)} | {fmt(s['lpips'], 4)} |")
    return "\n".join(rows)


TABLE_VARIABLES = 8  # the metadata table shows every variable of games with at most this many


def metadata_table(predictors: dict[str, Any]) -> str:
    """Rewards summed over steps 1..h (real, predicted, |error|), the share of starts whose
    episode end differs, and per-variable MAE: of every variable where the game has at most
    TABLE_VARIABLES, else of those the game's rules read."""
    first = next(iter(predictors.values()))["metadata"]
    names = list(first["horizons"][next(iter(first["horizons"]))]["mae"])
    if len(names) > TABLE_VARIABLES:
        names = first["rule_variables"]
    rows = ["| predictor | h | reward sum: real | predicted [95% CI] | abs error [95% CI] "
            "| episode end differs | " + " | ".join(f"{n} MAE" for n in names) + " |",
            "| --- | ---: | ---: | --- | --- | ---: |" + " ---: |" * len(names)]
    for name, result in predictors.items():
        for h, s in result["metadata"]["horizons"].items():
            r = s["reward_sum"]
            rows.append(f"| {name} | {h} | {fmt(r['real'], 2)} | {fmt(r['predicted'], 2, ci=True)}"
                        f" | {fmt(r['abs_error'], 2, ci=True)} | "
                        f"{fmt(s['episode_end']['mismatch'], 2)} | "
                        + " | ".join(fmt(s["mae"][n], 2) for n in names) + " |")
    return "\n".join(rows)


# -- video ------------------------------------------------------------------------------------


def video_frame(real: np.ndarray, preds: list[np.ndarray], gain: float, sep: int = 2
                ) -> np.ndarray:
    """real | pred_1 | gain*|pred_1 - real| | pred_2 | ... side by side, white separators."""
    panels = [real]
    for p in preds:
        diff = np.abs(p.astype(np.int16) - real.astype(np.int16)) * gain
        panels += [p, np.clip(diff, 0, 255).astype(np.uint8)]
    bar = np.full((real.shape[0], sep, 3), 255, np.uint8)
    row = [x for panel in panels for x in (panel, bar)][:-1]
    return np.concatenate(row, axis=1)


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    import imageio.v2 as imageio  # deferred: only needed with --video

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    if path.suffix.lower() == ".gif":
        imageio.mimwrite(tmp, frames, format="GIF", duration=1000 / fps, loop=0)
    else:  # even sizes suffice for yuv420p; 16-multiples would make imageio rescale
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=2) as writer:
            for frame in frames:
                writer.append_data(frame)
    os.replace(tmp, path)


# -- main -------------------------------------------------------------------------------------


PER_START = {"mse": "mse", "psnr_mean_per_frame": "psnr", "ssim": "ssim", "lpips": "lpips"}


def summarize(per_frame: dict[str, Any], lpips_note: str | None, per_start: bool
              ) -> dict[str, Any]:
    """The metrics' summaries at one horizon; with `per_start`, each start's values too (in
    start order, for paired comparisons between predictors)."""
    summary = summarize_frame_metrics(per_frame, lpips_note=lpips_note)
    if per_start:
        for key, source in PER_START.items():
            if per_frame.get(source) is not None and key in summary:
                summary[key]["per_start"] = np.asarray(per_frame[source], float).tolist()
    return summary


def build_report(args: Args, predictors: dict[str, Predictor],
                 starts: list[tuple[str, Episode, int]], mismatches: list[dict[str, Any]],
                 per_frame: dict[str, dict[int, list[dict[str, Any]]]], lpips_note: str | None,
                 last: np.ndarray, real_meta: np.ndarray, pred_meta: dict[str, np.ndarray]
                 ) -> dict[str, Any]:
    """The JSON that main writes, from the frame metrics of each batch (`per_frame`), the last
    context metadata (N, M), the real metadata (N, L, M) and each predictor's (N, L, M).

    Layout:

        {"env_id", "data", "split", "n_episodes", "n_starts",
         "starts": {episode: [t, ...]},          # the order of every per_start list
         "horizons": [h, ...], "context": K, "replay_mismatches": n,
         "replay_mismatch_starts": [{"episode", "t"}, ...], "seed", "machine", "torch",
         "commit", "skipped_predictors": [name, ...],
         "predictors": {name: {
             "name", "context",
             "folder", "denoising_steps", "decoder", "bf16_weights",   # world models only
             "horizons": {"h": {"mse", "psnr_mean_per_frame", "psnr_of_mean_mse", "ssim",
                                "lpips"}},   # summarize_frame_metrics; with --per-start, mse,
                                             # psnr_mean_per_frame, ssim, lpips hold per_start
             "metadata": {                   # closed loop (module docstring)
                 "rule_variables": [name, ...],   # those the reward/episode-end rules read
                 "horizons": {"h": {
                     "mae": {variable: S},        # |m^_{t+h} - m_{t+h}|, raw scale
                     "reward_sum": {"real": S, "predicted": S,   # summed over steps 1..h
                                    "abs_error": S},   # |R^_h - R_h|; per_start with --per-start
                     "episode_end": {"mismatch": S,   # share of starts where "ended at or
                                                      # before h" differs
                                     "real": share, "predicted": share}}}}}}}

    S is `neuralgym.metrics.summarize`'s {"mean", "ci95", "n"} over the starts.
    """
    spec = get_spec(args.env)
    horizons = sorted(set(args.horizons))
    results = {
        name: {"name": predictors[name].name, "context": predictors[name].context,
               **({} if name == BASELINE else {
                   "folder": getattr(predictors[name], "folder", None),
                   "denoising_steps": getattr(predictors[name], "steps", None),
                   "decoder": getattr(predictors[name], "decoder_kind", None),
                   "bf16_weights": getattr(predictors[name], "bf16_weights", False)}),
               "horizons": {str(h): summarize(concat(per_frame[name][h]), lpips_note,
                                              args.per_start)
                            for h in horizons},
               "metadata": metadata_metrics(spec, last, real_meta, pred_meta[name], horizons,
                                            args.per_start)}
        for name in predictors
    }
    skipped = [n for n in dict.fromkeys(args.predictor) if n not in predictors]
    starts_by_episode: dict[str, list[int]] = {}
    for name, _, t in starts:
        starts_by_episode.setdefault(name, []).append(t)
    return {
        "env_id": args.env,
        "data": str(args.data.resolve()),
        "split": args.split,
        "n_episodes": len({s[0] for s in starts}),
        "n_starts": len(starts),
        "starts": starts_by_episode,
        "horizons": horizons,
        "context": max(p.context for p in predictors.values()),
        "replay_mismatches": len(mismatches),
        "replay_mismatch_starts": mismatches,
        "seed": args.seed,
        "machine": machine(args.device),
        "torch": torch.__version__,
        "commit": git_commit(),
        "skipped_predictors": skipped,
        "predictors": results,
    }


def main(args: Args) -> dict[str, Any]:
    check_args(args)
    try:
        dataset = Dataset(args.data)
    except FileNotFoundError as e:
        raise BenchmarkError(str(e)) from None
    if dataset.env_id != args.env:
        raise BenchmarkError(f"{args.data} holds {dataset.env_id} episodes, not {args.env}: "
                             f"pass --env {dataset.env_id} or a dataset recorded from {args.env}")

    predictors = load_predictors(args.predictor, args.env, args.device, args.decoder)
    for p in predictors.values():  # the options for world models
        if isinstance(p, WorldModel):
            p.steps = args.denoising_steps or p.steps
            if args.bf16_weights:
                p.hold_in_bf16()
    context = max(p.context for p in predictors.values())
    length = max(args.horizons)
    horizons = sorted(set(args.horizons))
    starts = pick_starts(dataset, args, context)
    print(f"{len(starts)} starts in {len({s[0] for s in starts})} episodes of {args.data} "
          f"(split {args.split}), context {context}, horizons {horizons}", file=sys.stderr)

    lpips = LPIPSMetric(device=args.device)
    if not lpips.available:
        print(lpips.reason, file=sys.stderr)
    env = make_real(args.env).unwrapped
    per_frame: dict[str, dict[int, list[dict[str, Any]]]] = {
        name: {h: [] for h in horizons} for name in predictors}
    last: list[np.ndarray] = []  # per batch: m_t (B, M)
    real_meta: list[np.ndarray] = []  # per batch: real m_{t+1} .. m_{t+L} (B, L, M)
    pred_meta: dict[str, list[np.ndarray]] = {name: [] for name in predictors}
    mismatches: list[dict[str, Any]] = []
    video: list[np.ndarray] = []
    progress = tqdm(total=len(starts), desc="paired rollouts", unit="start", file=sys.stderr)
    for b in range(0, len(starts), args.batch_size):
        batch = starts[b : b + args.batch_size]
        replays = [replay(env, ep, t, length) for _, ep, t in batch]
        real = np.stack([r[0] for r in replays])  # (B, L, H, W, 3)
        real_meta.append(np.stack([r[1] for r in replays]))  # (B, L, M)
        for i, (name, ep, t) in enumerate(batch):
            if not np.array_equal(real[i], ep.frames[t + 1 : t + length + 1]):
                mismatches.append({"episode": name, "t": t})
        frames, metadata, past, future = context_batch(batch, context, length)
        last.append(metadata[:, -1])
        preds = {name: predict(p, frames, metadata, past, future, seed=args.seed + b)
                 for name, p in predictors.items()}
        for name, (pred, meta) in preds.items():
            pred_meta[name].append(meta)
            for h in horizons:
                per_frame[name][h].append(frame_metrics(pred[:, h - 1], real[:, h - 1], lpips))
        for i in range(min(len(batch), args.video_starts - b) if args.video else 0):
            video += [video_frame(real[i, j], [p[i, j] for p, _ in preds.values()],
                                  args.diff_gain)
                      for j in range(length)]
        progress.update(len(batch))
    progress.close()
    env.close()

    if mismatches:
        print(f"\n*** WARNING: {len(mismatches)} of {len(starts)} starts did not replay "
              "bit-exactly: the real env's frames after restoring the saved state differ from "
              f"the recorded ones (first: {mismatches[:3]}). Either the emulator replay is not "
              "bit-exact here or the recording is not what the emulator produced; the metrics "
              "compare against the replayed frames.\n",
              file=sys.stderr, flush=True)
    report = build_report(args, predictors, starts, mismatches, per_frame, lpips.reason,
                          np.concatenate(last), np.concatenate(real_meta),
                          {name: np.concatenate(m) for name, m in pred_meta.items()})
    atomic_write_json(args.json, report)
    if args.video is not None and video:
        write_video(args.video, video, args.video_fps)
        layout = ["real"] + [f"{n} | {args.diff_gain:g}x|{n} - real|" for n in predictors]
        print(f"video: {args.video} ({len(video)} frames; left to right: "
              f"{' | '.join(layout)})", file=sys.stderr)
    print(markdown_table(report["predictors"]))
    print()
    print(metadata_table(report["predictors"]))
    print(f"\nresults: {args.json}", file=sys.stderr)
    return report


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except BenchmarkError as e:
        sys.exit(f"paired_rollout.py: error: {e}")
