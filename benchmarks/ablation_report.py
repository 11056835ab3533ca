"""ABLATIONS.md from the results of training/ablations.sh.

    python benchmarks/ablation_report.py --results DIR [--out ABLATIONS.md]

DIR is the `results/` folder that training/ablations.sh writes (or its bundle
`ablations.tgz`, read without unpacking it on disk):

    metadata.json, frames.json, actions.json   benchmarks/paired_rollout.py JSONs, one per
                                               group; predictors are the variant folders
                                               (named <meta|nometa>-T<T>-<future|pastfuture>-
                                               <embedding|onehot>) and copy-last
    denoiser/<variant>.json                    each variant's denoiser_eval.json (latent MSE
                                               on test windows, with the recorded metadata)
    gphi/metadata_<kind>_eval.json             the g_phi variants' one-step errors
    settings.json                              the call's settings (steps, batch, seed, ...)

One section per ablation: per variant and horizon MSE / PSNR (of the mean MSE) / LPIPS with
bootstrap 95% CIs; the difference to the reference variant (metadata-conditioned vs ignorant;
past+future vs future actions at each T; one-hot vs embedding; T vs T = 1) with a 95% CI;
Li et al.'s Table 3 / Table 4 numbers (Breakout) beside the comparable quantity, the MSE over
the T frames of the first call (mean over h = 1 .. T); g_phi's per-variable MAE and accuracy
for each kind beside copy-previous.

Difference CIs: when the rollout JSON holds each start's values (training/ablations.sh runs
paired_rollout.py so that it keeps them, as `per_start` lists), a paired bootstrap over starts
(2,000 resamples, seed 0) of the difference; otherwise a normal approximation from the two
summary CIs, which ignores the pairing (wider than the paired CI when the two variants' errors
go up and down together) — the report says which one each number is.
Output is deterministic: the same files give the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralgym.data import atomic_write_text

BASELINE = "copy-last"
VARIANT = re.compile(r"^(meta|nometa)-T(\d+)-(future|pastfuture)-(embedding|onehot)$")
GPHI_KINDS = ("gru", "lstm", "transformer")
RESAMPLES = 2000

# Li et al., "Beyond Single-Step: Multi-Frame Action-Conditioned Video Generation for
# Reinforcement Learning Environments" (shared/seeds/001_*.txt), Breakout only:
# generated frames T -> condition -> (MSE, PSNR, LPIPS).
LI_SOURCE = "Li et al., Beyond Single-Step"
TABLE3 = {  # Table 3: future actions only vs past + future actions
    1: {"future": (13.1859, 36.9485, 0.0132), "past+future": (13.2076, 36.7749, 0.0145)},
    2: {"future": (13.3697, 36.8881, 0.0356), "past+future": (13.2152, 36.6384, 0.0376)},
    4: {"future": (14.3638, 36.5727, 0.0662), "past+future": (14.5893, 36.1825, 0.0554)},
}
TABLE4 = {  # Table 4: learned embedding layer vs one-hot vector (future actions)
    1: {"embedding": (13.1859, 36.9485, 0.0132), "onehot": (13.2162, 36.7846, 0.0141)},
    2: {"embedding": (13.3697, 36.8881, 0.0356), "onehot": (13.8342, 36.7308, 0.0190)},
    4: {"embedding": (14.3638, 36.5727, 0.0662), "onehot": (14.9298, 36.2293, 0.0698)},
}
LI_GAME = "Breakout"
LI_SETTING = ("their setting differs from ours: a fine-tuned OpenSora on 1M PPO-agent steps, "
              "without metadata; their numbers are the MSE over the T frames one call "
              "generates")

METRICS = (  # (summary key, label, digits, lower is better)
    ("mse", "MSE", 2, True),
    ("psnr_of_mean_mse", "PSNR (dB)", 2, False),
    ("lpips", "LPIPS", 4, True),
)


class ReportError(Exception):
    """A problem with the results, explained to the user."""


# -- variants -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    metadata: bool
    T: int
    context: str  # "future" | "past+future"
    encoding: str  # "embedding" | "onehot"

    @classmethod
    def parse(cls, name: str) -> Variant | None:
        m = VARIANT.match(name)
        if m is None:
            return None
        return cls(name, m[1] == "meta", int(m[2]),
                   "past+future" if m[3] == "pastfuture" else "future", m[4])

    @property
    def label(self) -> str:
        meta = "metadata" if self.metadata else "no metadata"
        return f"T={self.T}, {self.context} actions, {self.encoding}, {meta}"


# -- loading --------------------------------------------------------------------------------


class Results:
    """The files of one results folder (or .tgz), by relative path."""

    def __init__(self, source: Path):
        self.source = source
        self.files: dict[str, Any] = {}
        if source.is_file() and source.name.endswith((".tgz", ".tar.gz")):
            with tarfile.open(source) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith(".json"):
                        data = tar.extractfile(member)
                        assert data is not None
                        name = re.sub(r"^(\./)?(results/)?", "", member.name)
                        self.files[name] = self._parse(io.TextIOWrapper(data).read(),
                                                       f"{source}:{member.name}")
        elif source.is_dir():
            for path in sorted(source.rglob("*.json")):
                self.files[path.relative_to(source).as_posix()] = self._parse(
                    path.read_text(), str(path))
        else:
            raise ReportError(f"results {source} is neither a folder nor a .tgz "
                              "(training/ablations.sh writes $ABL_DIR/results and "
                              "$OUT/ablations.tgz)")
        if not self.files:
            raise ReportError(f"{source} holds no JSON results: run training/ablations.sh")

    @staticmethod
    def _parse(text: str, where: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ReportError(f"{where} is not valid JSON: {e}") from None

    def get(self, name: str) -> Any | None:
        return self.files.get(name)


@dataclass
class Group:
    """One paired-rollout JSON: variant name -> predictor key in the JSON."""

    name: str
    data: dict[str, Any]
    keys: dict[str, str]

    def summary(self, variant: str, h: int, metric: str) -> dict[str, Any] | None:
        per_h = self.data["predictors"][self.keys[variant]]["horizons"].get(str(h))
        return None if per_h is None else per_h.get(metric)

    def per_start(self, variant: str, h: int, metric: str) -> np.ndarray | None:
        """Each start's value (in the JSON's start order), if the JSON keeps them."""
        key = "mse" if metric == "psnr_of_mean_mse" else metric
        s = self.summary(variant, h, key)
        if s is None or s.get("per_start") is None:
            return None
        return np.asarray(s["per_start"], np.float64)

    @property
    def horizons(self) -> list[int]:
        return [int(h) for h in self.data.get("horizons", [])]

    @property
    def variants(self) -> list[str]:
        return [v for v in self.keys if v != BASELINE]


def load_group(results: Results, name: str) -> Group | None:
    data = results.get(f"{name}.json")
    if data is None:
        return None
    if not isinstance(data, dict) or "predictors" not in data:
        raise ReportError(f"{name}.json in {results.source} is not a paired_rollout.py result")
    keys: dict[str, str] = {}
    for key in data["predictors"]:
        variant = BASELINE if key == BASELINE else Path(key).name
        keys[variant] = key
    return Group(name, data, keys)


# -- statistics -----------------------------------------------------------------------------


def psnr(mse: float | np.ndarray) -> float | np.ndarray:
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / np.asarray(mse, np.float64))


@dataclass
class Diff:
    value: float
    lo: float
    hi: float
    paired: bool


def difference(group: Group, a: str, b: str, h: int, metric: str) -> Diff | None:
    """a - b at horizon h: paired bootstrap over starts if the JSON keeps each start's values,
    else a normal approximation from the two summary CIs."""
    sa, sb = group.summary(a, h, metric), group.summary(b, h, metric)
    if sa is None or sb is None or sa.get("mean") is None or sb.get("mean") is None:
        return None
    va, vb = group.per_start(a, h, metric), group.per_start(b, h, metric)
    if va is not None and vb is not None and len(va) == len(vb) and len(va) > 1:
        return paired_bootstrap(va, vb, metric)
    if "ci95" not in sa or "ci95" not in sb:
        return None
    half = [(s["ci95"][1] - s["ci95"][0]) / 2 for s in (sa, sb)]
    if not all(map(math.isfinite, half)):
        return None
    value = sa["mean"] - sb["mean"]
    width = math.hypot(*half)  # the two half-widths are 1.96 standard errors each
    return Diff(value, value - width, value + width, paired=False)


def paired_bootstrap(va: np.ndarray, vb: np.ndarray, metric: str) -> Diff:
    n = len(va)
    idx = np.random.default_rng(0).integers(0, n, size=(RESAMPLES, n))
    if metric == "psnr_of_mean_mse":  # per-start values are MSEs
        value = float(psnr(va.mean()) - psnr(vb.mean()))
        stats = psnr(va[idx].mean(1)) - psnr(vb[idx].mean(1))
    else:
        d = va - vb
        value = float(d.mean())
        stats = d[idx].mean(1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return Diff(value, float(lo), float(hi), paired=True)


def first_call(group: Group, variant: str, T: int, metric: str) -> tuple[float, tuple | None]:
    """The mean over h = 1 .. T of `metric` ("mse" or "lpips"), with a bootstrap CI over starts
    when the JSON keeps each start's values (None otherwise, or when a horizon is missing)."""
    values, means = [], []
    for h in range(1, T + 1):
        s = group.summary(variant, h, metric)
        if s is None or s.get("mean") is None:
            return math.nan, None
        means.append(s["mean"])
        values.append(group.per_start(variant, h, metric))
    mean = float(np.mean(means))
    if any(v is None for v in values):
        return mean, None if T > 1 else tuple(group.summary(variant, 1, metric).get("ci95", ()))
    per_start = np.mean(values, axis=0)  # (starts,)
    idx = np.random.default_rng(0).integers(0, len(per_start), size=(RESAMPLES, len(per_start)))
    lo, hi = np.percentile(per_start[idx].mean(1), [2.5, 97.5])
    return mean, (float(lo), float(hi))


# -- formatting -----------------------------------------------------------------------------


def num(x: float, digits: int) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}f}"


def stat(s: dict[str, Any] | None, digits: int) -> str:
    if s is None:
        return "—"
    if s.get("mean") is None:
        return "not measured"
    text = num(s["mean"], digits)
    if "ci95" in s:
        text += f" [{num(s['ci95'][0], digits)}, {num(s['ci95'][1], digits)}]"
    return text


def diff_text(d: Diff | None, digits: int) -> str:
    if d is None:
        return "—"
    sign = "+" if d.value > 0 else ""
    return (f"{sign}{num(d.value, digits)} [{num(d.lo, digits)}, {num(d.hi, digits)}]"
            + ("" if d.paired else " †"))


def reading(d: Diff | None, lower_better: bool, a: str, b: str) -> str:
    if d is None:
        return "—"
    if d.lo <= 0 <= d.hi:
        return "no clear difference (CI includes 0)"
    a_better = (d.hi < 0) == lower_better
    return f"**{a if a_better else b}** better"


def group_facts(group: Group, results: Results) -> list[str]:
    d = group.data
    lines = [f"- Results: `{group.name}.json`: split {d.get('split')}, {d['n_starts']} starts "
             f"in {d.get('n_episodes', '?')} episodes, context {d.get('context', '?')} frames, "
             f"horizons {d.get('horizons')}, seed {d.get('seed')}, "
             f"{d.get('replay_mismatches', '?')} replay mismatches"]
    machine = d.get("machine") or {}
    lines.append(f"- Machine: {machine.get('gpu') or machine.get('device', '?')}, torch "
                 f"{d.get('torch', '?')}")
    if d.get("skipped_predictors"):
        lines.append(f"- **Predictors skipped by the run**: {d['skipped_predictors']}")
    steps = {}
    for v in group.variants:
        e = results.get(f"denoiser/{v}.json")
        steps[v] = None if e is None else e.get("steps")
    if len(set(steps.values())) == 1 and None not in steps.values():
        lines.append(f"- Budget: every variant trained {next(iter(steps.values()))} steps "
                     "(same batch, seed and data)")
    else:
        lines.append(f"- **Unequal or unknown budgets** (steps per variant): {steps}")
    paired = all(group.per_start(v, h, "mse") is not None
                 for v in group.keys for h in group.horizons)
    lines.append("- Difference CIs: " + (
        "paired bootstrap over the same starts (the JSON keeps each start's values)" if paired
        else "† normal approximation from the two summary CIs, because the JSON has no "
             "per-start values (paired_rollout.py run directly); it ignores the pairing, so "
             "it is wider than a paired CI when the variants' errors are correlated"))
    return [*lines, ""]


def variant_table(group: Group) -> list[str]:
    lines = ["| h | predictor | MSE [95% CI] | PSNR of the mean MSE (dB) [95% CI] | "
             "LPIPS [95% CI] |", "| ---: | --- | --- | --- | --- |"]
    notes = set()
    for h in group.horizons:
        for v in group.keys:
            cells = []
            for metric, _, digits, _ in METRICS:
                s = group.summary(v, h, metric)
                if s is not None and s.get("mean") is None and s.get("note"):
                    notes.add(s["note"])
                cells.append(stat(s, digits))
            lines.append(f"| {h} | {v} | " + " | ".join(cells) + " |")
    lines.append("")
    if notes:
        lines += ["Not measured: " + " ".join(sorted(notes)), ""]
    return lines


def diff_table(group: Group, pairs: list[tuple[str, str, str, str]]) -> list[str]:
    """pairs: (variant a, variant b, label of a, label of b); rows a - b per horizon."""
    lines = ["| comparison (a − b) | h | ΔMSE [95% CI] | reading (MSE) | ΔPSNR (dB) [95% CI] | "
             "ΔLPIPS [95% CI] |", "| --- | ---: | --- | --- | --- | --- |"]
    for a, b, la, lb in pairs:
        if a not in group.keys or b not in group.keys:
            lines.append(f"| {la} − {lb} | | missing from the JSON | | | |")
            continue
        for h in group.horizons:
            d_mse = difference(group, a, b, h, "mse")
            lines.append(
                f"| {la} − {lb} | {h} | {diff_text(d_mse, 2)} | "
                f"{reading(d_mse, True, la, lb)} | "
                f"{diff_text(difference(group, a, b, h, 'psnr_of_mean_mse'), 2)} | "
                f"{diff_text(difference(group, a, b, h, 'lpips'), 4)} |")
    return [*lines, ""]


def latent_table(results: Results, variants: list[str]) -> list[str]:
    rows = []
    for v in variants:
        e = results.get(f"denoiser/{v}.json")
        if e is None:
            rows.append(f"| {v} | — | — | — | no denoiser eval JSON | — |")
            continue
        mse = ", ".join(f"{s} steps: {m:.4f}" for s, m in e.get("mse", {}).items())
        rows.append(f"| {v} | {e.get('steps', '?')} | {e.get('parameters', 0):,} | "
                    f"{e.get('test_windows', '?')} | {mse} | "
                    f"{e.get('copy_last_mse', math.nan):.4f} |")
    return ["Latent MSE of the T latents one call predicts, on test windows of the cache with "
            "the *recorded* metadata (train_denoiser.py's evaluation; no g_phi, no VAE decode; "
            "by sampler steps):", "",
            "| variant | steps | parameters | test windows | latent MSE | copy-last latent MSE |",
            "| --- | ---: | ---: | ---: | --- | ---: |", *rows, ""]


def li_table(group: Group, game: str, table: dict, rows: list[tuple[str, str, str]],
             title: str) -> list[str]:
    """rows: (variant, condition key in `table`, label). Ours: the first call's T frames."""
    T_of = {v: Variant.parse(v).T for v, _, _ in rows if Variant.parse(v)}
    lines = [f"The first call's T frames (mean over h = 1 .. T) beside {LI_SOURCE}, {title} "
             f"({LI_GAME}; {LI_SETTING}):", "",
             "| T | condition | our MSE [95% CI] | our PSNR of that MSE (dB) | our LPIPS | "
             "their MSE | their PSNR (dB) | their LPIPS |",
             "| ---: | --- | --- | ---: | --- | ---: | ---: | ---: |"]
    missing_ci = False
    for v, cond, label in rows:
        T = T_of.get(v)
        if T is None or v not in group.keys:
            continue
        m, ci = first_call(group, v, T, "mse")
        lp, lp_ci = first_call(group, v, T, "lpips")
        ours = num(m, 2) + (f" [{num(ci[0], 2)}, {num(ci[1], 2)}]" if ci else "")
        missing_ci |= ci is None and not math.isnan(m)
        lp_text = "not measured" if math.isnan(lp) else num(lp, 4) + (
            f" [{num(lp_ci[0], 4)}, {num(lp_ci[1], 4)}]" if lp_ci else "")
        theirs = table.get(T, {}).get(cond) if game == LI_GAME else None
        their = ([f"{theirs[0]:.4f}", f"{theirs[1]:.4f}", f"{theirs[2]:.4f}"] if theirs
                 else ["—", "—", "—"])
        lines.append(f"| {T} | {label} | {ours} | {num(float(psnr(m)), 2)} | {lp_text} | "
                     + " | ".join(their) + " |")
    lines.append("")
    if missing_ci:
        lines += ["(No CI where the JSON lacks per-start values or a horizon in 1 .. T: a mean "
                  "over horizons needs each start's values.)", ""]
    if game != LI_GAME:
        lines += [f"{LI_SOURCE} reports these tables for {LI_GAME} only.", ""]
    return lines


def game_name(env_id: str) -> str:
    return re.sub(r"-v\d+$", "", re.sub(r"^Neural", "", env_id))


# -- sections -------------------------------------------------------------------------------


def not_run(name: str, results: Results) -> list[str]:
    return [f"Not run: the results have no `{name}.json` "
            f"(`bash training/ablations.sh ENV_ID {name}`).", ""]


def metadata_section(results: Results) -> list[str]:
    lines = ["## (a) Metadata-conditioned vs metadata-ignorant denoiser", "",
             "The first document's central claim: conditioning the denoiser on the game's "
             "metadata (predicted by g_phi during the rollout) beats a metadata-ignorant "
             "baseline on frame MSE. Both variants: T = 1, future actions, action embedding, "
             "the same VAE and g_phi.", ""]
    group = load_group(results, "metadata")
    if group is None:
        return lines + not_run("metadata", results)
    a, b = "meta-T1-future-embedding", "nometa-T1-future-embedding"
    lines += group_facts(group, results)
    lines += ["Per variant (bootstrap 95% CIs over starts):", "", *variant_table(group)]
    lines += ["Paired difference, conditioned − ignorant (negative ΔMSE: metadata helps):", "",
              *diff_table(group, [(a, b, "conditioned", "ignorant")])]
    lines += latent_table(results, group.variants)
    return lines


def frames_section(results: Results) -> list[str]:
    lines = ["## (b) Frames per call T and action context", "",
             f"{LI_SOURCE}, Table 3: T = 1, 2, 4 frames per call, conditioned on the T future "
             "actions only vs the past and the T future actions. Every other setting is shared.",
             ""]
    group = load_group(results, "frames")
    if group is None:
        return lines + not_run("frames", results)
    lines += group_facts(group, results)
    lines += ["Per variant (bootstrap 95% CIs over starts):", "", *variant_table(group)]
    parsed = [Variant.parse(v) for v in group.variants]
    by = {(p.T, p.context): p.name for p in parsed if p is not None}
    Ts = sorted({p.T for p in parsed if p is not None})
    pairs = [(by[T, "past+future"], by[T, "future"], f"past+future T={T}", f"future T={T}")
             for T in Ts if (T, "past+future") in by and (T, "future") in by]
    lines += ["Past + future − future actions at each T (positive ΔMSE: future-only is "
              "better, as Table 3 reports):", "", *diff_table(group, pairs)]
    if (1, "future") in by:
        pairs = [(by[T, "future"], by[1, "future"], f"future T={T}", "future T=1")
                 for T in Ts if T != 1 and (T, "future") in by]
        if pairs:
            lines += ["T frames per call − one frame per call (future actions):", "",
                      *diff_table(group, pairs)]
    rows = [(by[T, c], c, f"{c} actions") for T in Ts for c in ("future", "past+future")
            if (T, c) in by]
    lines += li_table(group, game_name(group.data["env_id"]), TABLE3, rows, "Table 3")
    lines += latent_table(results, group.variants)
    return lines


def actions_section(results: Results) -> list[str]:
    lines = ["## (c) Learned action embedding vs one-hot", "",
             f"{LI_SOURCE}, Table 4: actions through a learned embedding layer vs one-hot "
             "vectors (then the same two FC + ReLU layers), T = 1, 2, 4, future actions.", ""]
    group = load_group(results, "actions")
    if group is None:
        return lines + not_run("actions", results)
    lines += group_facts(group, results)
    lines += ["Per variant (bootstrap 95% CIs over starts):", "", *variant_table(group)]
    parsed = [Variant.parse(v) for v in group.variants]
    by = {(p.T, p.encoding): p.name for p in parsed if p is not None}
    Ts = sorted({p.T for p in parsed if p is not None})
    pairs = [(by[T, "onehot"], by[T, "embedding"], f"one-hot T={T}", f"embedding T={T}")
             for T in Ts if (T, "onehot") in by and (T, "embedding") in by]
    lines += ["One-hot − embedding at each T (positive ΔMSE: the embedding is better, as "
              "Table 4 reports):", "", *diff_table(group, pairs)]
    rows = [(by[T, e], e, e) for T in Ts for e in ("embedding", "onehot") if (T, e) in by]
    lines += li_table(group, game_name(group.data["env_id"]), TABLE4, rows, "Table 4")
    lines += latent_table(results, group.variants)
    return lines


def gphi_section(results: Results) -> list[str]:
    lines = ["## (d) g_phi: GRU vs LSTM vs transformer", "",
             "One-step-ahead metadata prediction on the test windows of the same cache "
             "(train_metadata.py's evaluation, raw scale), each kind trained with the same "
             "steps, batch and seed, beside copying the previous value. The eval JSONs hold no "
             "per-window values, so no CIs.", ""]
    evals = {k: results.get(f"gphi/metadata_{k}_eval.json") for k in GPHI_KINDS}
    evals = {k: e for k, e in evals.items() if e is not None}
    if not evals:
        return lines + ["Not run: the results have no gphi/metadata_<kind>_eval.json "
                        "(`bash training/ablations.sh ENV_ID gphi`).", ""]
    kinds = list(evals)
    first = evals[kinds[0]]
    lines += ["| | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds)]
    for key, label in (("steps", "steps"), ("parameters", "parameters"),
                       ("test_windows", "test windows"), ("window", "window W")):
        lines.append(f"| {label} | " + " | ".join(
            f"{evals[k].get(key, '?'):,}" if isinstance(evals[k].get(key), int)
            else str(evals[k].get(key, "?")) for k in kinds) + " |")
    lines.append("")
    same_copy = all(e["variables"][n].get("copy_mae") == v.get("copy_mae")
                    for e in evals.values() for n, v in first["variables"].items()
                    if n in e["variables"])
    names = list(first["variables"])
    lines += ["Mean absolute error per variable (raw scale; lower is better):", "",
              "| variable | kind | copy-previous | " + " | ".join(kinds) + " | best |",
              "| --- | --- | ---: |" + " ---: |" * len(kinds) + " --- |"]
    for n in names:
        v0 = first["variables"][n]
        maes = {k: evals[k]["variables"].get(n, {}).get("mae") for k in kinds}
        known = {k: m for k, m in maes.items() if m is not None}
        low = min(known.values()) if known else math.nan
        tied = [k for k, m in known.items() if m == low]
        best = "—" if not known else ("all equal" if len(tied) == len(kinds) and len(kinds) > 1
                                      else ", ".join(tied))
        if known and low >= v0["copy_mae"]:
            best += " (none beats copy-previous)"
        lines.append(f"| {n} | {v0['kind']} | {v0['copy_mae']:.4g} | " + " | ".join(
            "—" if maes[k] is None else f"{maes[k]:.4g}" for k in kinds) + f" | {best} |")
    norm = {k: evals[k].get("normalised_mae") for k in kinds}
    lines.append(f"| mean MAE / std (all) | | {first.get('copy_normalised_mae', math.nan):.4g} | "
                 + " | ".join("—" if norm[k] is None else f"{norm[k]:.4g}" for k in kinds)
                 + " | |")
    lines.append("")
    categorical = [n for n in names if "accuracy" in first["variables"][n]
                   or "copy_accuracy" in first["variables"][n]]
    if categorical:
        lines += ["Exact-match accuracy of the categorical variables (higher is better):", "",
                  "| variable | copy-previous | " + " | ".join(kinds) + " |",
                  "| --- | ---: |" + " ---: |" * len(kinds)]
        for n in categorical:
            cells = [evals[k]["variables"].get(n, {}).get("accuracy") for k in kinds]
            lines.append(f"| {n} | {first['variables'][n].get('copy_accuracy', math.nan):.4f} | "
                         + " | ".join("—" if c is None else f"{c:.4f}" for c in cells) + " |")
        lines.append("")
    share = ", ".join(f"{n} {first['variables'][n]['changed']:.3f}" for n in names
                      if "changed" in first["variables"][n])
    if share:
        lines += [f"Share of the test steps in which each variable changes (the only steps "
                  f"where copy-previous is wrong): {share}.", ""]
    if not same_copy:
        lines += ["Note: the copy-previous numbers differ between the kinds' evaluations "
                  "(different windows?); the column shows the first kind's.", ""]
    return lines


def settings_lines(results: Results) -> list[str]:
    s = results.get("settings.json")
    if not s:
        return ["Settings: no settings.json in the results.", ""]
    shown = ", ".join(f"{k} = `{v}`" for k, v in s.items() if v not in (None, ""))
    return [f"Settings of the last training/ablations.sh call: {shown}.", ""]


def render(results: Results, command: str) -> str:
    lines = ["# Ablations", "",
             f"Generated by `{command}`; do not edit by hand. Every number comes from the JSON "
             "files of training/ablations.sh's results folder and from the constants of "
             "benchmarks/ablation_report.py (Li et al.'s tables).", "",
             "Frames at native resolution, MSE over pixels and channels on the 0-255 scale, "
             "PSNR = 10 log10(255^2 / MSE) of the mean MSE, LPIPS (AlexNet) when its weights "
             "were there; means over the paired starts (the real emulator restored to a saved "
             "state, every predictor given the same real context and the same actions) with "
             "bootstrap 95% CIs. Each group's variants are evaluated in one run, on the same "
             "starts. Differences are a − b; † marks a CI from the summary CIs (not paired). "
             "The CIs are per comparison, not corrected for the many horizons and pairs: with "
             "no real difference about one reading in 20 still says \"better\" by chance.",
             "", *settings_lines(results)]
    for section in (metadata_section, frames_section, actions_section, gphi_section):
        lines += section(results)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, required=True,
                        help="training/ablations.sh's results folder, or its ablations.tgz")
    parser.add_argument("--out", type=Path, default=Path("ABLATIONS.md"),
                        help="markdown file to write")
    args = parser.parse_args(argv)
    results = Results(args.results)
    command = (f"python benchmarks/ablation_report.py --results {args.results.as_posix()} "
               f"--out {args.out.as_posix()}")
    atomic_write_text(args.out, render(results, command))
    print(f"wrote {args.out}", file=sys.stderr)
    return args.out


if __name__ == "__main__":
    try:
        main()
    except ReportError as e:
        sys.exit(f"ablation_report.py: error: {e}")
