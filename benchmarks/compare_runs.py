"""One predictor across two paired_rollout.py runs on the same starts: paired difference B - A.

    python benchmarks/compare_runs.py A.json B.json [--predictor NAME] [--predictor-b NAME] \\
        [--metric mse] [--json OUT.json]

    # the shipped model with and without --bf16-weights (both runs with --per-start)
    python benchmarks/compare_runs.py out/bf16-off.json out/bf16-on.json
    # two model folders, each the only model of its run
    python benchmarks/compare_runs.py out/a.json out/b.json --predictor runs/wm-a \\
        --predictor-b runs/wm-b --json out/a-vs-b.json

A.json and B.json are JSONs that benchmarks/paired_rollout.py wrote with --per-start, on the
same starts: the same data, --split, --episodes, --starts-per-episode, --horizons and --seed
(checked: env id, start steps, horizons and seed must be equal). Each start's values are in
the same order in both runs, so B's start i is compared with A's start i.

Per horizon h: the mean of the metric (default MSE) in each run with its bootstrap 95% CI over
starts (as paired_rollout.py reports it), the mean of the per-start differences B - A with a
paired percentile bootstrap 95% CI over starts (2,000 resamples, seed 0), the relative
difference (B - A) / A of the means, and a reading: "B higher" or "B lower" when the CI of
B - A excludes 0, otherwise "no clear difference (CI includes 0)". For MSE and LPIPS lower is
better; for PSNR and SSIM higher is better.

Output: a markdown table on stdout, after one line naming the runs; with --json, the same
numbers as JSON. Output is deterministic: the same files give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralgym.data import atomic_write_json
from neuralgym.metrics import bootstrap_ci, summarize

RESAMPLES = 2000  # bootstrap resamples of the paired difference
SEED = 0
# metric key in paired_rollout.py's JSON (those it can keep per start) -> (label, digits)
METRICS: dict[str, tuple[str, int]] = {
    "mse": ("MSE", 2),
    "psnr_mean_per_frame": ("PSNR per frame (dB)", 2),
    "ssim": ("SSIM", 4),
    "lpips": ("LPIPS", 4),
}
REQUIRED = ("env_id", "n_starts", "starts", "horizons", "seed", "predictors")
SAME = ("env_id", "starts", "horizons", "seed")  # what makes two runs' starts the same
MODEL_FIELDS = ("bf16_weights", "decoder", "denoising_steps")  # shown in the heading line
READINGS = ("B higher", "B lower", "no clear difference (CI includes 0)")


class BenchmarkError(Exception):
    """A problem with the inputs, explained to the user."""


@dataclass
class Args:
    """Compare one predictor across two paired_rollout.py runs (see the module docstring)."""

    a: Path  # run A: paired_rollout.py --json file
    b: Path  # run B: the same starts, the other setting
    predictor: str = "default"  # predictor name in A
    predictor_b: str | None = None  # predictor name in B; None: the same as in A
    metric: str = "mse"
    json: Path | None = None  # where to write the numbers (JSON)


def parse_cli(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line. `neuralgym.cli.parse_args` makes only `--flags`, and the
    two runs are positional, so this one is argparse's own."""
    parser = argparse.ArgumentParser(
        prog="compare_runs.py", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("a", type=Path, metavar="A.json",
                        help="run A: the JSON of benchmarks/paired_rollout.py --per-start")
    parser.add_argument("b", type=Path, metavar="B.json",
                        help="run B: the same starts and settings, the other variant")
    parser.add_argument("--predictor", default="default",
                        help="predictor to compare: its name in A's 'predictors' "
                        "(default: %(default)s)")
    parser.add_argument("--predictor-b", default=None,
                        help="its name in B's 'predictors' (default: the same as --predictor)")
    parser.add_argument("--metric", default="mse", choices=list(METRICS),
                        help="metric compared, one that paired_rollout.py keeps per start "
                        "(default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the numbers here (JSON)")
    return Args(**vars(parser.parse_args(argv)))


# -- loading ----------------------------------------------------------------------------------


def load_run(path: Path) -> dict[str, Any]:
    """The JSON of one paired_rollout.py run; BenchmarkError unless it looks like one."""
    if not path.is_file():
        raise BenchmarkError(f"{path} does not exist: pass the --json file of "
                             "benchmarks/paired_rollout.py")
    try:
        run = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchmarkError(f"{path} is not valid JSON ({e}): pass the --json file of "
                             "benchmarks/paired_rollout.py") from None
    missing = [k for k in REQUIRED if k not in run] if isinstance(run, dict) else list(REQUIRED)
    if missing or not isinstance(run["predictors"], dict):
        raise BenchmarkError(f"{path} is not a paired_rollout.py result (missing "
                             f"{', '.join(missing) or 'a predictors object'}): pass the --json "
                             "file of benchmarks/paired_rollout.py")
    return run


def check_same_starts(a: dict[str, Any], b: dict[str, Any], args: Args) -> None:
    """Both runs rolled out from the same starts (same env, start steps, horizons, seed)."""
    # `starts` is {episode: [t, ...]}; per_start lists follow its order, so compare it ordered
    def key(run: dict[str, Any], field: str) -> Any:
        value = run[field]
        return list(value.items()) if isinstance(value, dict) else value

    differ = [f for f in SAME if key(a, f) != key(b, f)]
    if differ:
        raise BenchmarkError(f"not the same starts: {args.a} and {args.b} differ in "
                             f"{', '.join(differ)}; compare only runs made on the same data "
                             "with the same settings (--split, --episodes, --starts-per-episode, "
                             "--horizons, --seed)")


def predictor_of(run: dict[str, Any], path: Path, name: str, flag: str) -> dict[str, Any]:
    """The predictor `name` of `run`, or BenchmarkError listing those it has."""
    if name not in run["predictors"]:
        there = ", ".join(repr(n) for n in run["predictors"]) or "none"
        raise BenchmarkError(f"{path} has no predictor {name!r} (it has: {there}): pass "
                             f"{flag} NAME")
    return run["predictors"][name]


def per_start(result: dict[str, Any], path: Path, name: str, h: int, metric: str,
              n_starts: int) -> np.ndarray:
    """Predictor `name`'s per-start values of `metric` at horizon h, shape (n_starts,)."""
    summary = result.get("horizons", {}).get(str(h), {}).get(metric)
    where = f"{path}: predictor {name!r} at h={h}"
    if summary is None:
        raise BenchmarkError(f"{where} has no {metric}: rerun paired_rollout.py with --per-start")
    if summary.get("mean") is None:  # e.g. LPIPS without its weights
        note = summary.get("note")
        raise BenchmarkError(f"{where}: {metric} was not measured"
                             + (f" ({note})" if note else "") + "; pick another --metric")
    if "per_start" not in summary:
        raise BenchmarkError(f"{where} has no per-start {metric} values: rerun "
                             "paired_rollout.py with --per-start")
    values = np.asarray(summary["per_start"], dtype=np.float64)
    if values.shape != (n_starts,):
        raise BenchmarkError(f"{where} has {values.size} per-start values for {n_starts} "
                             "starts: the file is damaged; rerun paired_rollout.py")
    if not np.all(np.isfinite(values)):  # PSNR is +inf on an exact frame
        raise BenchmarkError(f"{where} has non-finite per-start {metric} values (an exact "
                             "frame gives an infinite PSNR): compare --metric mse")
    return values


# -- statistics -------------------------------------------------------------------------------


def reading(ci: tuple[float, float]) -> str:
    """What the 95% CI of B - A says."""
    lo, hi = ci
    if lo > 0:
        return READINGS[0]
    if hi < 0:
        return READINGS[1]
    return READINGS[2]


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Run A's and B's per-start values at one horizon (both shape (n_starts,), start i the
    same start in both) -> their summaries and the paired difference B - A."""
    diff = b - a  # (n_starts,)
    ci = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=SEED)
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    relative = (mean_b - mean_a) / mean_a if mean_a != 0 else None
    return {"a": summarize(a), "b": summarize(b),
            "diff": {"mean": float(np.mean(diff)), "ci95": list(ci), "n": int(diff.size)},
            "relative_diff": relative, "reading": reading(ci)}


# -- output -----------------------------------------------------------------------------------


def describe(path: Path, name: str, result: dict[str, Any]) -> str:
    """`path` (predictor 'name', bf16_weights ..., decoder ..., denoising_steps ...)."""
    fields = [f"{k} {result[k]}" for k in MODEL_FIELDS if result.get(k) is not None]
    return f"{path} (predictor {name!r}" + "".join(f", {f}" for f in fields) + ")"


def fmt_ci(mean: float, ci: Sequence[float], digits: int, sign: bool = False) -> str:
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(mean)} [{f.format(ci[0])}, {f.format(ci[1])}]"


def markdown_table(report: dict[str, Any]) -> str:
    label, digits = METRICS[report["metric"]]
    rows = [f"| h | A {label} [95% CI] | B {label} [95% CI] | B - A [95% CI] | (B - A) / A "
            "| reading |", "| ---: | --- | --- | --- | ---: | --- |"]
    for h, r in report["horizons"].items():
        rel = "n/a" if r["relative_diff"] is None else f"{100 * r['relative_diff']:+.1f}%"
        rows.append(f"| {h} | {fmt_ci(r['a']['mean'], r['a']['ci95'], digits)} "
                    f"| {fmt_ci(r['b']['mean'], r['b']['ci95'], digits)} "
                    f"| {fmt_ci(r['diff']['mean'], r['diff']['ci95'], digits + 1, sign=True)} "
                    f"| {rel} | {r['reading']} |")
    return "\n".join(rows)


def main(args: Args) -> dict[str, Any]:
    name_b = args.predictor_b if args.predictor_b is not None else args.predictor
    if args.metric not in METRICS:
        raise BenchmarkError(f"--metric must be one of {', '.join(METRICS)}, got {args.metric}")
    run_a, run_b = load_run(args.a), load_run(args.b)
    check_same_starts(run_a, run_b, args)
    result_a = predictor_of(run_a, args.a, args.predictor, "--predictor")
    result_b = predictor_of(run_b, args.b, name_b, "--predictor-b")
    n_starts = sum(len(ts) for ts in run_a["starts"].values())
    horizons = [int(h) for h in run_a["horizons"]]
    per_h = {}
    for h in horizons:
        a = per_start(result_a, args.a, args.predictor, h, args.metric, n_starts)
        b = per_start(result_b, args.b, name_b, h, args.metric, n_starts)
        per_h[str(h)] = compare(a, b)

    def side(path: Path, name: str, result: dict[str, Any]) -> dict[str, Any]:
        return {"file": str(path), "predictor": name,
                **{k: result[k] for k in MODEL_FIELDS if k in result}}

    report = {
        "a": side(args.a, args.predictor, result_a),
        "b": side(args.b, name_b, result_b),
        "env_id": run_a["env_id"],
        "n_starts": n_starts,
        "metric": args.metric,
        "difference": "B - A per start; paired percentile bootstrap 95% CI over starts",
        "resamples": RESAMPLES,
        "bootstrap_seed": SEED,
        "horizons": per_h,
    }
    print(f"A: {describe(args.a, args.predictor, result_a)}; "
          f"B: {describe(args.b, name_b, result_b)}; {n_starts} starts ({run_a['env_id']})")
    print(markdown_table(report))
    if args.json is not None:
        atomic_write_json(args.json, report)
        print(f"\nresults: {args.json}", file=sys.stderr)
    return report


if __name__ == "__main__":
    try:
        main(parse_cli())
    except BenchmarkError as e:
        print(f"compare_runs.py: error: {e}", file=sys.stderr)
        sys.exit(2)
