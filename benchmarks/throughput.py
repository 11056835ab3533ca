"""Dream steps per second of a world model, beside the real emulator's, on one device.

    python benchmarks/throughput.py --model neuralgym/shipped/breakout --env NeuralBreakout-v0 \\
        --device cuda --batch-sizes 1 16 256 1024 --steps 1 2 3 4 --json out/throughput.json

What is measured, in this order:

1. The real emulator (`make_real(env)`, random actions, resets included): one process, then
   --real-workers processes at once (one env each, --seconds each), their rates summed.
   A real step is one agent step (the game's frameskip inside), like one dream frame.
2. FLOPs of one dream step at batch 1 for each step count S, counted with
   `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions and attention, with
   attention on the math backend so every device counts the same; norms and elementwise ops
   are not counted), with and without the VAE decode.
3. For each variant (below), batch size B and denoising step count S: `WorldModel.step`
   (g_phi, the sampler with S denoiser calls, the VAE decode at native resolution) from random
   start contexts, and the same without decoding (latent-only dreaming). Warm-up calls first
   (compilation and graph capture happen there), then repeats of timed calls with the device
   synchronised before each clock read; the median repeat's rate is reported. Dream frames/s
   = B * T * calls / time, T = the model's frames per call.
4. The largest batch that fits: from twice the largest --batch-sizes, doubling until out of
   memory or --max-batch-cap, on the first variant at the model's own step count (CUDA only
   unless --max-batch-cap is given).

Frames come from the folder's fast decoder where it has one (`neuralgym.models.decoder`;
--decoder vae measures the VAE's own).

Variants (each a fresh copy of the model; options are applied here, not in the library):
- "eager": the library as it ships (bf16 autocast on CUDA unless --no-bf16).
- "cuda-graphs" (--cuda-graphs, CUDA only): the denoiser's UNet and the decoder replayed
  from CUDA graphs captured once per input shape (torch.cuda.CUDAGraph), for launch-bound
  small batches.
- "compile[mode]" (--compile): `torch.compile` of the UNet and the decoder; mode
  "reduce-overhead" (inductor plus its own CUDA graphs) with --cuda-graphs on CUDA,
  "max-autotune-no-cudagraphs" without, "default" on the CPU (--compile-mode overrides).
A variant that fails is reported in the JSON and the table, and the others go on.

Output: a markdown table on stdout, progress on stderr, and with --json a file (written
atomically after every point, "complete": true at the end) holding the machine, the model
folder and its parameter counts, every point, the FLOPs, the real-emulator rates and the
issue's targets beside the measured numbers.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.games import UnknownEnvError, get_spec
from neuralgym.model_folder import ModelFolder, ModelFolderError
from neuralgym.world_model import DreamState, WorldModel

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s. Source: NVIDIA H100 Tensor Core GPU
# Architecture whitepaper (2022), table "NVIDIA H100 compared to A100": Peak BF16 Tensor TFLOPS
# with FP32 accumulate 989.4 (H100 SXM5) and 756 (H100 PCIe); NVIDIA's datasheets give twice
# these numbers "with sparsity" (1,979 / 1,513). H100 NVL datasheet: 1,671 with sparsity. The
# H200 datasheet gives the H100 SXM figure (1,979 with sparsity). A100 datasheet: 312 dense.
BF16_DENSE_PEAK_TFLOPS: dict[str, float] = {
    "H100 SXM": 989.4,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.5,
    "H200": 989.4,
    "A100": 312.0,
}
PEAK_SOURCE = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper: peak BF16 tensor "
               "TFLOP/s, dense (the datasheets' figures with sparsity halved)")
TARGETS = {  # from the issue; reported beside the measurements, never asserted
    "batch1_h100": 120.0,  # frames/s at batch 1 on one H100
    "batched_h100": 10_000.0,  # dream frames/s batched on one H100
    "batch1_cpu2": 20.0,  # frames/s at batch 1 on a 2-core CPU, shipped model
}
CONTEXT_POOL = 64  # distinct random start contexts, tiled to any batch size


@dataclass
class Args:
    model: Path = field(metadata={"help": "world-model folder (config.json + safetensors)"})
    env: str = field(metadata={"help": "Neural env id of the model, e.g. NeuralBreakout-v0"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:1"})
    batch_sizes: list[int] = field(default_factory=lambda: [1, 16, 256, 1024], metadata={
        "help": "batch sizes B (parallel dreams per call)"})
    steps: list[int] = field(default_factory=lambda: [1, 2, 3, 4], metadata={
        "help": "denoising step counts S (denoiser calls per world-model step)"})
    frames_per_call: int | None = field(default=None, metadata={
        "help": "frames T per call; fixed by the model's training, so only the model's own "
                "value is accepted (default: the model's)"})
    seconds: float = field(default=5.0, metadata={
        "help": "seconds of timed calls per point (and per real-emulator run)"})
    warmup: int | None = field(default=None, metadata={
        "help": "untimed calls before each point (compilation and graph capture happen "
                "here); default 3 on CUDA, 1 on the CPU"})
    real_workers: int | None = field(default=None, metadata={
        "help": "real-emulator worker processes (default: all cores)"})
    cuda_graphs: bool | None = field(default=None, metadata={
        "help": "also measure with CUDA graphs (default: on with CUDA)"})
    compile: bool | None = field(default=None, metadata={
        "help": "also measure with torch.compile (default: on with CUDA)"})
    compile_mode: str = field(default="auto", metadata={
        "help": "torch.compile mode; auto: reduce-overhead with --cuda-graphs on CUDA, "
                "max-autotune-no-cudagraphs without, default on the CPU",
        "choices": ["auto", "default", "reduce-overhead", "max-autotune",
                    "max-autotune-no-cudagraphs"]})
    bf16: bool = field(default=True, metadata={
        "help": "bf16 autocast on CUDA (the library's default); --no-bf16 runs fp32"})
    cudnn_benchmark: bool = field(default=False, metadata={
        "help": "torch.backends.cudnn.benchmark (cuDNN picks the fastest convolution per "
                "shape during warm-up); off is the library's default"})
    channels_last: bool | None = field(default=None, metadata={
        "help": "channels-last weights for the denoiser and the fast decoder (default: the "
                "library's choice: on the CPU only)"})
    bf16_weights: bool = field(default=False, metadata={
        "help": "hold the denoiser's backbone and the fast decoder in bf16 and run them "
                "without autocast (group norms in bf16 too): a speed probe, its fidelity "
                "is not measured here"})
    eager_baseline: bool = field(default=True, metadata={
        "help": "measure the library as it ships ('eager') besides the speed options"})
    max_batch_cap: int | None = field(default=None, metadata={
        "help": "largest batch tried when searching for the largest that fits (doubling); "
                "default 16384 on CUDA, no search on the CPU; 0 = no search"})
    decoder: str = field(default="auto", metadata={
        "help": "frames from the folder's fast decoder where it has one (auto), the VAE's "
                "decoder (vae), or the fast one required (fast)",
        "choices": ["auto", "vae", "fast"]})
    seed: int = field(default=0, metadata={"help": "seed of the contexts, actions, sampler"})
    json: Path | None = field(default=None, metadata={"help": "write the results here (JSON)"})


class BenchmarkError(Exception):
    """A problem with the inputs, explained to the user."""


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


# -- checks -----------------------------------------------------------------------------------


def check_args(args: Args) -> dict[str, Any]:
    """Validate the arguments; returns the model folder's config.json."""
    try:
        spec = get_spec(args.env)
    except UnknownEnvError as e:
        raise BenchmarkError(str(e)) from None
    for name in ("batch_sizes", "steps"):
        values = getattr(args, name)
        if not values or min(values) < 1:
            raise BenchmarkError(f"--{name.replace('_', '-')} must be positive, got {values}")
    if args.warmup is None:
        args.warmup = 3 if args.device.startswith("cuda") else 1
    if args.seconds <= 0 or args.warmup < 1:
        raise BenchmarkError("--seconds must be positive and --warmup at least 1")
    if args.real_workers is not None and args.real_workers < 0:
        raise BenchmarkError("--real-workers must be 0 (skip) or more")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchmarkError(f"--device {args.device}: torch sees no CUDA device here")
    try:
        config = ModelFolder(args.model).read_config()
    except ModelFolderError as e:
        raise BenchmarkError(str(e)) from None
    env_id = config.get("env_id")
    if env_id is not None and env_id != args.env:
        raise BenchmarkError(f"{args.model} is a model of {env_id}, not {args.env}")
    vae = config.get("components", {}).get("vae", {})
    frame = (vae.get("frame_height"), vae.get("frame_width"))
    if frame != spec.obs_shape[:2]:
        raise BenchmarkError(f"{args.model}: its VAE takes {frame} frames, {args.env} has "
                             f"{spec.obs_shape[:2]}")
    return config


# -- the real emulator ------------------------------------------------------------------------


def real_worker(env_id: str, seconds: float, seed: int, barrier: Any, queue: Any) -> dict:
    """Step `make_real(env_id)` with uniform random actions for `seconds` (after `barrier`);
    the result also goes to `queue` when given."""
    try:
        env = make_real(env_id)
        actions = np.random.default_rng(seed).integers(0, env.action_space.n, 4096)
        env.reset(seed=seed)
        if barrier is not None:
            barrier.wait(timeout=300)
        steps = resets = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            _, _, terminated, truncated, _ = env.step(int(actions[steps % len(actions)]))
            steps += 1
            if terminated or truncated:
                env.reset()
                resets += 1
        env.close()
        result: dict[str, Any] = {"steps": steps, "seconds": elapsed, "resets": resets,
                                  "steps_per_s": steps / elapsed}
    except BaseException as e:  # reported, not raised: the parent waits for every worker
        if barrier is not None:
            barrier.abort()
        result = {"error": f"{type(e).__name__}: {e}"}
    if queue is not None:
        queue.put(result)
    return result


def measure_real(env_id: str, seconds: float, workers: int, seed: int) -> dict[str, Any]:
    """Steps/s of one process, then of `workers` processes at once (summed)."""
    print(f"real emulator: 1 process, {seconds:g} s", file=sys.stderr, flush=True)
    single = real_worker(env_id, seconds, seed, None, None)
    out: dict[str, Any] = {"env_id": env_id, "policy": "uniform random actions",
                           "single_process": single, "workers": workers}
    if workers < 1:
        return out
    print(f"real emulator: {workers} processes, {seconds:g} s", file=sys.stderr, flush=True)
    # fork: workers need only the emulator, and nothing has touched the GPU yet
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=real_worker, args=(env_id, seconds, seed + 1 + i, barrier, queue),
                         daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    results = []
    for _ in procs:
        try:
            results.append(queue.get(timeout=seconds + 600))
        except Exception:  # a worker died without reporting
            results.append({"error": "no result (worker died or hung)"})
    for p in procs:
        p.join(timeout=30)
    ok = [r for r in results if "error" not in r]
    out["multi_process"] = {
        "steps_per_s": sum(r["steps_per_s"] for r in ok) if ok else None,
        "per_worker": results,
        "errors": len(results) - len(ok),
    }
    return out


# -- the model and its variants ---------------------------------------------------------------


def count_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def param_counts(wm: WorldModel) -> dict[str, int]:
    if wm.decoder is wm.vae:
        vae = wm.vae.vae
        decoder = count_params(vae.decoder) + count_params(getattr(vae, "post_quant_conv", None))
    else:  # the folder's fast decoder
        decoder = count_params(wm.decoder)
    counts = {"vae": count_params(wm.vae), "vae_decoder": decoder,
              "metadata": count_params(wm.g), "denoiser": count_params(wm.denoiser),
              "denoiser_backbone": count_params(wm.denoiser.backbone)}
    counts["total"] = counts["vae"] + counts["metadata"] + counts["denoiser"]
    counts["per_step"] = counts["metadata"] + counts["denoiser"] + decoder  # what step() runs
    return counts


@dataclass
class Variant:
    name: str
    cuda_graphs: bool = False  # manual CUDA graphs of the UNet and the VAE decoder
    compile_mode: str | None = None  # torch.compile of the UNet and the VAE decoder

    @property
    def inductor_graphs(self) -> bool:  # inductor's CUDA graph trees
        return self.compile_mode in ("reduce-overhead", "max-autotune")


def choose_variants(args: Args, cuda: bool) -> tuple[list[Variant], list[str]]:
    """The variants to measure, and notes on options that do not apply here."""
    notes: list[str] = []
    graphs = cuda if args.cuda_graphs is None else args.cuda_graphs
    compile_ = cuda if args.compile is None else args.compile
    if graphs and not cuda:
        notes.append("--cuda-graphs skipped: it needs a CUDA device")
        graphs = False
    mode = args.compile_mode
    if mode == "auto":
        mode = ("reduce-overhead" if graphs else "max-autotune-no-cudagraphs") if cuda \
            else "default"
    variants = []
    if args.eager_baseline or not (graphs or compile_):
        variants.append(Variant("eager"))
    if graphs:
        variants.append(Variant("cuda-graphs", cuda_graphs=True))
    if compile_:
        variants.append(Variant(f"compile[{mode}]", compile_mode=mode))
    if not args.bf16 and cuda:
        notes.append("--no-bf16: fp32 on CUDA (peak fractions are against the bf16 peak)")
    return variants, notes


def load_model(args: Args, variant: Variant) -> WorldModel:
    """A fresh WorldModel on the device with the variant's options applied."""
    wm = WorldModel.from_pretrained(args.model, device=args.device, decoder=args.decoder)
    if not args.bf16:  # the library autocasts to bf16 on CUDA; this instance does not
        wm._autocast = contextlib.nullcontext  # type: ignore[method-assign]
    if args.channels_last is not None:  # before graph capture and compilation
        wm.set_memory_format(torch.channels_last if args.channels_last
                             else torch.contiguous_format)
    if args.bf16_weights:  # before graph capture and compilation
        wm.hold_in_bf16()
    if variant.cuda_graphs:
        wm.enable_cuda_graphs()
    if variant.compile_mode is not None:
        dynamo = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):  # one graph per batch size
            if hasattr(dynamo, name):
                setattr(dynamo, name, max(64, getattr(dynamo, name)))
        wm.denoiser.backbone.compile(mode=variant.compile_mode, dynamic=False)
        wm.decoder._decode_raw = torch.compile(  # type: ignore[method-assign]
            wm.decoder._decode_raw, mode=variant.compile_mode, dynamic=False)
    return wm


def start_contexts(wm: WorldModel, batch: int, seed: int) -> DreamState:
    """Dream states of `batch` random contexts: uint8 noise frames of the game's shape, zero
    metadata, random actions (CONTEXT_POOL distinct ones, tiled)."""
    rng = np.random.default_rng(seed)
    n, L = min(batch, CONTEXT_POOL), wm.context
    cfg = wm.vae.config
    frames = rng.integers(0, 256, (n, L, cfg.frame_height, cfg.frame_width, 3), dtype=np.uint8)
    M = len(get_spec(wm.env_id).metadata) if wm.env_id else wm.denoiser.config.metadata_dim
    metadata = np.zeros((n, L, M), np.float32)
    actions = rng.integers(0, wm.denoiser.config.n_actions, (n, L - 1))
    state = wm.start(frames, metadata, actions)
    index = torch.arange(batch, device=wm.device) % n
    return DreamState(state.latents[index].contiguous(), state.metadata[index].contiguous(),
                      state.actions[index].contiguous())


class Dreamer:
    """Calls `WorldModel.step` on its own state, B dreams at a time."""

    def __init__(self, wm: WorldModel, batch: int, steps: int, decode: bool, seed: int,
                 mark_steps: bool):
        self.wm, self.decode, self.mark_steps = wm, decode, mark_steps
        wm.steps = steps
        self.state = start_contexts(wm, batch, seed)
        g = torch.Generator(wm.device).manual_seed(seed)
        self.actions = torch.randint(0, wm.denoiser.config.n_actions,
                                     (16, batch, wm.frames_per_call), generator=g,
                                     device=wm.device)
        self.generator = torch.Generator(wm.device).manual_seed(seed)
        self.calls = 0

    def __call__(self) -> None:
        if self.mark_steps:  # a new step for inductor's CUDA graph trees
            torch.compiler.cudagraph_mark_step_begin()
        _, _, self.state = self.wm.step(self.state, self.actions[self.calls % 16],
                                        self.generator, decode=self.decode)
        self.calls += 1


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_calls(fn: Callable[[], None], seconds: float, warmup: int,
               sync: Callable[[], None], target_repeats: int = 5, min_repeats: int = 3
               ) -> dict[str, Any]:
    """Warm up, then repeats of n calls (n chosen so a repeat takes ~seconds / 5), the device
    synchronised before each clock read, until `seconds` have passed and at least
    `min_repeats` repeats ran. Returns calls/s (median, min, max over repeats)."""
    sync()
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync()
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    fn()
    sync()
    one = time.perf_counter() - start
    n = max(1, int(seconds / target_repeats / max(one, 1e-9)))
    rates: list[float] = []
    total = 0.0
    while len(rates) < min_repeats or (total < seconds and len(rates) < 10 * target_repeats):
        sync()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        elapsed = time.perf_counter() - start
        rates.append(n / elapsed)
        total += elapsed
    return {"calls_per_s": statistics.median(rates), "calls_per_s_min": min(rates),
            "calls_per_s_max": max(rates), "calls_per_repeat": n, "repeats": len(rates),
            "timed_s": total, "warmup_s": warmup_s}


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- FLOPs ------------------------------------------------------------------------------------


def count_step_flops(wm: WorldModel, steps: int, decode: bool, seed: int) -> int:
    """FLOPs of one `WorldModel.step` at batch 1 (matmul, conv, attention on the math path)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    dreamer = Dreamer(wm, 1, steps, decode, seed, mark_steps=False)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        dreamer()
    return int(counter.get_total_flops())


def flops_table(wm: WorldModel, steps: list[int], seed: int) -> dict[str, dict[str, float]]:
    """Per step count S: FLOPs of a step and per frame, with and without the decode."""
    T = wm.frames_per_call
    table = {}
    for S in steps:
        full = count_step_flops(wm, S, True, seed)
        latent = count_step_flops(wm, S, False, seed)
        table[str(S)] = {"step": full, "step_latent_only": latent,
                         "per_frame": full / T, "per_frame_latent_only": latent / T,
                         "decode_per_frame": (full - latent) / T}
    return table


def bf16_peak(device: torch.device) -> dict[str, Any] | None:
    """The card's dense bf16 peak, when it is a card we know."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name:
        key = "H100 PCIe" if "PCIe" in name else "H100 NVL" if "NVL" in name else "H100 SXM"
    else:
        key = next((k for k in BF16_DENSE_PEAK_TFLOPS if k in name), None)
    if key is None:
        return {"device": name, "card": None, "tflops": None, "source": PEAK_SOURCE,
                "note": "no known peak for this card: achieved TFLOP/s only"}
    return {"device": name, "card": key, "tflops": BF16_DENSE_PEAK_TFLOPS[key],
            "source": PEAK_SOURCE}


# -- measuring --------------------------------------------------------------------------------


class Report:
    """The results, written atomically to --json after every point."""

    def __init__(self, path: Path | None, data: dict[str, Any]):
        self.path, self.data = path, data

    def write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".tmp-{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def measure_point(wm: WorldModel, variant: Variant, batch: int, steps: int, decode: bool,
                  args: Args, flops: dict[str, dict[str, float]], peak: dict | None
                  ) -> dict[str, Any]:
    """One point: B dreams, S denoising steps, with or without decode. Errors are returned."""
    T = wm.frames_per_call
    point: dict[str, Any] = {"variant": variant.name, "batch_size": batch, "steps": steps,
                             "frames_per_call": T, "decode": decode}
    timing = None
    try:
        dreamer = Dreamer(wm, batch, steps, decode, args.seed, variant.inductor_graphs)
        timing = time_calls(dreamer, args.seconds, args.warmup, synchronizer(wm.device))
    except Exception as e:  # noqa: BLE001 - reported in the results, the run goes on
        point["oom"] = is_oom(e)
        point["error"] = "out of memory" if point["oom"] else f"{type(e).__name__}: {e}"
    dreamer = None  # the traceback is gone here, so its tensors can be freed
    free_memory(wm.device)
    if timing is None:
        return point
    frames_per_s = timing["calls_per_s"] * batch * T
    point.update(timing)
    point["frames_per_s"] = frames_per_s
    point["frames_per_s_min"] = timing["calls_per_s_min"] * batch * T
    point["frames_per_s_max"] = timing["calls_per_s_max"] * batch * T
    point["ms_per_call"] = 1000.0 / timing["calls_per_s"]
    per_frame = flops.get(str(steps), {}).get("per_frame" if decode else "per_frame_latent_only")
    if per_frame is not None:
        point["flops_per_frame"] = per_frame
        point["achieved_tflops"] = per_frame * frames_per_s / 1e12
        if peak is not None and peak.get("tflops") and args.bf16:
            point["peak_fraction"] = point["achieved_tflops"] / peak["tflops"]
    return point


def find_max_batch(try_batch: Callable[[int], dict[str, Any]], start: int, cap: int
                   ) -> dict[str, Any]:
    """Double the batch from `start` until a point fails or `cap` is passed; the largest
    batch that ran, why the search stopped, and every point tried."""
    largest, points, batch = None, [], start
    stopped = f"cap {cap} reached"
    while batch <= cap:
        point = try_batch(batch)
        points.append(point)
        if "error" in point:
            stopped = f"{point['error']} at batch {batch}"
            break
        largest = batch
        batch *= 2
    return {"start": start, "cap": cap, "largest_batch": largest, "stopped": stopped,
            "points": points}


def run_variant(variant: Variant, args: Args, flops: dict[str, dict[str, float]],
                peak: dict | None, search_cap: int, report: Report, result: dict[str, Any],
                search_steps: int) -> None:
    """Every (B, S, decode) point of one variant, then (if asked) the max-batch search."""
    try:
        wm = load_model(args, variant)
    except Exception as e:  # noqa: BLE001
        result["error"] = f"could not apply the options: {type(e).__name__}: {e}"
        return
    # decode -> (smallest batch that failed, why): larger batches are skipped. Out of memory,
    # or any error once the variant has run (a kernel's size limit at a large batch); an
    # error before anything ran means the variant itself does not work here.
    failed: dict[bool, tuple[int, str]] = {}
    ran = False
    for batch in sorted(set(args.batch_sizes)):
        for steps in args.steps:
            for decode in (True, False):
                if decode in failed and batch >= failed[decode][0]:
                    result["points"].append({
                        "variant": variant.name, "batch_size": batch, "steps": steps,
                        "decode": decode, "frames_per_call": wm.frames_per_call,
                        "error": f"skipped: batch {failed[decode][0]} failed "
                                 f"({failed[decode][1]})"})
                    continue
                point = measure_point(wm, variant, batch, steps, decode, args, flops, peak)
                result["points"].append(point)
                report.write()
                print(progress_line(point), file=sys.stderr, flush=True)
                if "error" not in point:
                    ran = True
                elif point["oom"] or ran:
                    if decode not in failed or batch < failed[decode][0]:
                        failed[decode] = (batch, point["error"])
                else:
                    result["error"] = f"stopped after an error: {point['error']}"
                    return
    if search_cap:
        if True in failed:
            result["max_batch"] = {
                "largest_batch": max((b for b in args.batch_sizes if b < failed[True][0]),
                                     default=None),
                "stopped": f"{failed[True][1]} at batch {failed[True][0]} (grid)",
                "points": []}
        else:
            def try_batch(batch: int) -> dict[str, Any]:
                point = measure_point(wm, variant, batch, search_steps, True, args, flops,
                                      peak)
                print(progress_line(point, "max-batch search"), file=sys.stderr, flush=True)
                return point

            result["max_batch"] = find_max_batch(try_batch, 2 * max(args.batch_sizes),
                                                 search_cap)
            result["max_batch"]["steps"] = search_steps
        report.write()


def progress_line(point: dict[str, Any], what: str = "") -> str:
    head = (f"{what + ': ' if what else ''}{point['variant']} B={point['batch_size']} "
            f"S={point['steps']} {'decode' if point['decode'] else 'latent-only'}")
    if "error" in point:
        return f"{head}: {point['error']}"
    return (f"{head}: {point['frames_per_s']:.1f} frames/s, {point['ms_per_call']:.2f} ms/call "
            f"(warm-up {point['warmup_s']:.1f} s)")


# -- summary ----------------------------------------------------------------------------------


def all_points(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    points = []
    for v in variants:
        points += v["points"] + v.get("max_batch", {}).get("points", [])
    return [p for p in points if "frames_per_s" in p]


def targets_steps(default_steps: int, steps: list[int]) -> int:
    """The step count the targets are judged at: the model's own if measured, else the most."""
    return default_steps if default_steps in steps else max(steps)


def targets(data: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """The issue's targets beside the best measured numbers at S = `steps` (with decode)."""
    points = [p for p in all_points(data["variants"]) if p["decode"] and p["steps"] == steps]
    batch1 = [p for p in points if p["batch_size"] == 1]
    best1 = max(batch1, key=lambda p: p["frames_per_s"], default=None)
    best = max(points, key=lambda p: p["frames_per_s"], default=None)
    gpu = data["machine"].get("gpu") or ""
    cpus = data["machine"]["cpus"]
    # the H200 is the H100 SXM's chip with more, faster memory (same bf16 peak): the issue's
    # H100 targets are judged on it too, the card named beside them
    on_h100 = "H100" in gpu or "H200" in gpu
    h200 = ("an H200: the H100 SXM's bf16 peak, 1.4x its memory bandwidth"
            if "H200" in gpu else None)
    on_cpu = data["machine"]["device"] == "cpu"

    def row(name: str, target: float, point: dict | None, applies: bool, where: str,
            stand_in: str | None = None) -> dict[str, Any]:
        measured = point["frames_per_s"] if point else None
        return {"target": name, "goal_frames_per_s": target, "measured_frames_per_s": measured,
                "at": None if point is None else
                f"{point['variant']} B={point['batch_size']} S={point['steps']}",
                "applies_here": applies, "where": where, "stand_in": stand_in,
                "met": None if (not applies or measured is None) else measured >= target}

    return [
        row("batch 1, one H100", TARGETS["batch1_h100"], best1, on_h100, "one H100", h200),
        row("batched, one H100", TARGETS["batched_h100"], best, on_h100, "one H100", h200),
        row("batch 1, 2-core CPU, shipped model", TARGETS["batch1_cpu2"], best1,
            on_cpu and cpus == 2, f"2-core CPU (this machine: {cpus} cores)"),
    ]


def applies_cell(target: dict[str, Any]) -> str:
    """The targets table's 'applies here' cell: yes; yes (here <the machine standing in for
    the one the target names>); or no (where it applies)."""
    if not target["applies_here"]:
        return f"no ({target['where']})"
    stand_in = target.get("stand_in")  # absent from the JSONs of older throughput.py runs
    return f"yes (here {stand_in})" if stand_in else "yes"


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(data: dict[str, Any]) -> str:
    lines = [f"## Dream throughput: {data['model']['path']} ({data['env_id']}), "
             f"{data['machine']['device']} {data['machine'].get('gpu') or ''}".rstrip(), "",
             f"T = {data['model']['frames_per_call']} frames per call; frames/s = B x T x "
             "calls/s, the median repeat (slowest-fastest repeat in brackets); 'latent only' "
             "skips the VAE decode; decode share = 1 - latent-only time / full time.", "",
             "| variant | B | S | frames/s | ms/call | frames/s latent only | decode share "
             "| GFLOP/frame | TFLOP/s | % of peak |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    after: list[str] = []
    for v in data["variants"]:
        if v.get("error") and not v["points"]:
            lines.append(f"| {v['name']} | failed: {v['error']} | | | | | | | | |")
        full = {(p["batch_size"], p["steps"]): p for p in v["points"] if p["decode"]}
        latent = {(p["batch_size"], p["steps"]): p for p in v["points"] if not p["decode"]}
        for key, p in full.items():
            lat = latent.get(key, {})
            if "error" in p:
                lines.append(f"| {v['name']} | {key[0]} | {key[1]} | {p['error']} | | "
                             f"{fmt(lat.get('frames_per_s'))} | | | | |")
                continue
            share = None
            if "ms_per_call" in lat:
                share = 100 * max(0.0, 1 - lat["ms_per_call"] / p["ms_per_call"])
            pct = p.get("peak_fraction")
            lines.append(
                f"| {v['name']} | {key[0]} | {key[1]} | {fmt(p['frames_per_s'])} "
                f"({fmt(p['frames_per_s_min'])}-{fmt(p['frames_per_s_max'])}) | "
                f"{fmt(p['ms_per_call'], 2)} | {fmt(lat.get('frames_per_s'))} | "
                f"{fmt(share, 0)}{'%' if share is not None else ''} | "
                f"{fmt(p.get('flops_per_frame', 0) / 1e9, 2)} | "
                f"{fmt(p.get('achieved_tflops'), 3)} | "
                f"{fmt(None if pct is None else 100 * pct, 2)} |")
        if v.get("error") and v["points"]:
            lines.append(f"| {v['name']} | {v['error']} | | | | | | | | |")
        mb = v.get("max_batch")
        if mb:  # after the table, which it would otherwise cut in two
            ok = [p for p in mb.get("points", []) if "frames_per_s" in p]
            best = max(ok, key=lambda p: p["frames_per_s"], default=None)
            after.append(f"Largest batch that fits ({v['name']}, S={mb.get('steps', '-')}): "
                         f"{mb['largest_batch']} ({mb['stopped']})"
                         + (f"; best {fmt(best['frames_per_s'])} frames/s at B="
                            f"{best['batch_size']}" if best else ""))
    for line in after:
        lines += ["", line]
    lines += ["", "FLOPs per frame (FlopCounterMode, batch 1; matmul/conv/attention only):", "",
              "| S | GFLOP/frame | latent only | VAE decode |", "| ---: | ---: | ---: | ---: |"]
    for S, f in data["flops"]["per_steps"].items():
        lines.append(f"| {S} | {f['per_frame'] / 1e9:.3f} | "
                     f"{f['per_frame_latent_only'] / 1e9:.3f} | "
                     f"{f['decode_per_frame'] / 1e9:.3f} |")
    peak = data["flops"].get("peak")
    if peak and peak.get("tflops"):
        lines.append(f"\nPeak: {peak['card']} {peak['tflops']} TFLOP/s dense bf16 "
                     f"({peak['source']}).")
    real = data.get("real_env")
    if real:
        single = real["single_process"]
        multi = real.get("multi_process", {})
        lines += ["", f"Real emulator ({real['env_id']}, {real['policy']}): "
                  f"1 process {fmt(single.get('steps_per_s'))} steps/s"
                  + (f"; {real['workers']} processes {fmt(multi.get('steps_per_s'))} steps/s "
                     "(summed)" if multi else "")
                  + (f" [{single['error']}]" if "error" in single else "")]
    lines += ["", "Targets (from the issue; not asserted):", "",
              "| target | goal frames/s | measured | at | applies here | met |",
              "| --- | ---: | ---: | --- | --- | --- |"]
    for t in data["targets"]:
        lines.append(f"| {t['target']} | {t['goal_frames_per_s']:,.0f} | "
                     f"{fmt(t['measured_frames_per_s'])} | {t['at'] or '-'} | "
                     f"{applies_cell(t)} | "
                     f"{'-' if t['met'] is None else 'yes' if t['met'] else 'no'} |")
    for note in data.get("notes", []):
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


def machine(device: torch.device) -> dict[str, Any]:
    cuda = device.type == "cuda"
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpus": cpus,
            "cpus_usable": usable, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cuda": torch.version.cuda,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if cuda else None,
            "gpu_memory_gib": (torch.cuda.get_device_properties(device).total_memory / 2**30
                               if cuda else None)}


# -- main -------------------------------------------------------------------------------------


def main(args: Args) -> dict[str, Any]:
    config = check_args(args)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    model_T = int(config["components"]["denoiser"].get("frames_per_call", 1))
    if args.frames_per_call is not None and args.frames_per_call != model_T:
        raise BenchmarkError(f"{args.model} generates {model_T} frames per call (fixed when "
                             f"it was trained); --frames-per-call {args.frames_per_call} "
                             "is not possible with it")
    variants, notes = choose_variants(args, cuda)
    search_cap = args.max_batch_cap if args.max_batch_cap is not None else (16384 if cuda
                                                                            else 0)

    workers = args.real_workers
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    real = measure_real(args.env, args.seconds, workers, args.seed)  # before the GPU is used

    eager = WorldModel.from_pretrained(args.model, device=device, decoder=args.decoder)
    default_steps = eager.steps
    target_steps = targets_steps(default_steps, args.steps)
    print(f"counting FLOPs (batch 1, S = {args.steps})", file=sys.stderr, flush=True)
    flops = flops_table(eager, args.steps, args.seed)
    peak = bf16_peak(device)
    data: dict[str, Any] = {
        "benchmark": "throughput",
        "env_id": args.env,
        "complete": False,
        "machine": machine(device),
        "model": {"path": str(Path(args.model).resolve()), "frames_per_call": eager.frames_per_call,
                  "context": eager.context, "default_steps": default_steps,
                  "backbone": eager.denoiser.config.backbone, "params": param_counts(eager),
                  "decoder": "vae" if eager.decoder is eager.vae else "fast",
                  "latent_shape": list(eager.vae.config.latent_shape),
                  "frame_shape": list(get_spec(args.env).obs_shape)},
        "settings": {**asdict(args), "bf16_autocast": args.bf16 and cuda,
                     "max_batch_cap": search_cap, "real_workers": workers},
        "flops": {"counter": "torch.utils.flop_counter.FlopCounterMode, batch 1, attention "
                             "on the SDPA math backend; matmul, convolution and attention "
                             "FLOPs only (norms, activations, the scheduler not counted)",
                  "per_steps": flops, "peak": peak},
        "real_env": real,
        "variants": [],
        "notes": notes,
    }
    del eager
    free_memory(device)
    report = Report(args.json, data)
    report.write()

    for i, variant in enumerate(variants):
        result: dict[str, Any] = {"name": variant.name, "cuda_graphs": variant.cuda_graphs,
                                  "compile_mode": variant.compile_mode, "error": None,
                                  "points": []}
        data["variants"].append(result)
        print(f"variant {variant.name}", file=sys.stderr, flush=True)
        run_variant(variant, args, flops, peak, search_cap if i == 0 else 0, report, result,
                    target_steps)
        free_memory(device)  # the variant's model went with run_variant's frame
        if result["error"]:
            print(f"variant {variant.name}: {result['error']}", file=sys.stderr, flush=True)
        if variant.compile_mode is not None:
            torch._dynamo.reset()
    data["targets"] = targets(data, target_steps)
    data["complete"] = True
    report.write()
    print(markdown(data))
    if args.json is not None:
        print(f"\nresults: {args.json}", file=sys.stderr)
    return data


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except BenchmarkError as e:
        sys.exit(f"throughput.py: error: {e}")
