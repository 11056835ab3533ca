"""BENCHMARKS.md from the paired-rollout results in benchmarks/results/.

    python benchmarks/report.py [--results benchmarks/results] [--out BENCHMARKS.md]

Every `<name>.json` in the results folder (except `*.meta.json`) is a JSON written by
`benchmarks/paired_rollout.py` (layout in its `build_report`/`main`). Each needs a sidecar
`<name>.meta.json` with the facts the JSON cannot know:

    {
      "model": "display name of the model",       # or {"<predictor name in the JSON>": "display
                                                  #      name", ...} when it has several models
      "model_folder": "neuralgym/shipped/breakout", # optional; relative to the repository root;
                                                  # its vae_eval.json / metadata_eval.json are read
                                                  # (once a shipped folder moves on, the evals
                                                  # its older results had are kept in
                                                  # benchmarks/results/evals/<name>/)
      "machine": "one NVIDIA H100 80GB HBM3, 16 CPU cores",
      "commit": "which code produced the numbers",
      "data": "what the rollouts were evaluated on",
      "training": {"vae": {"gpu_time": "...", "data": "..."}, ...},  # per component
      "date": "2026-11-27",                       # optional
      "command": "how the result was produced",   # optional
      "video": "path/to/side-by-side.mp4",        # optional; relative to the repository root
      "notes": "anything else",                   # optional
      "order": 0                                  # optional; a game's results are shown by
                                                  # (order, name), order defaulting to 100
    }

PPO results live in `<results>/ppo/<name>/`, one folder per game and run, as
training/gpu_pipeline.sh's ppo-eval stage writes them: `ppo-real.json`, `ppo-dream.json` and
`ppo-random.json` (agents/evaluate_policy.py --json: the real-game scores of PPO trained on the
real game, PPO trained in the dream and the random policy), `real.curve.csv` and
`dream.curve.csv` (agents/train_ppo.py's learning curves), `ppo-curves.png` (their plot) and a
`meta.json`:

    {"env_id": "NeuralBreakout-v0", "title": "heading of the folder's section",
     "machine": "...", "date": "2026-11-27", "commit": "...", "dream_model": "which model dreamt",
     "steps": {"real": 401408, "dream": 149520},   # training steps of each agent
     "seconds": {"real": 562, "dream": 720},       # optional: their training wall time
     "command": "...", "notes": "..."}             # optional

They are shown after the games: the three scores, the dream agent's return as a fraction of the
real agent's against the issue's target (at least 80%), and whether the real agent is
distinguishable from random at all; a folder lacking meta.json or one of the three JSONs is
skipped with a note.

Results whose JSON has paired_rollout.py's closed-loop `metadata` block (older ones do not)
are also shown, per game, in a "Closed-loop metadata and rewards" section after the games: per
horizon, the real reward sum over steps 1..h, the model's predicted sum and |error| beside
copy-last's |error|, the share of starts whose episode end differs, and the MAE of the
variables the game's reward and episode-end rules read (its score and lives), model beside
copy-last.

Dream-reward results (`benchmarks/dream_rewards.py --json`) live in `<results>/dream_rewards/`,
each `<name>.json` with a `<name>.meta.json` sidecar (keys "model", "machine", "commit",
optional "date", "command", "notes"): points won and lost per 1,000 steps, real game beside
dream, shown with dream_rewards.py's own table.

Dream-throughput results (`benchmarks/throughput.py --json`) live in `<results>/throughput/`,
each `<name>.json` with a `<name>.meta.json` sidecar (keys "model", "machine", "commit",
optional "date", "command", "notes"); they are shown after the games with throughput.py's own
tables, the issue's targets computed from the measured points (also for a run cut short).

The report shows, per game (env id) and per result: MSE at every horizon with the ratio to
copy-last, a plot (benchmarks/results/<name>.png), the project's targets at h = 1 / 2 / 4
(MSE below Li et al.'s Table 2 and at most a quarter of copy-last's), one table per horizon
(MSE, PSNR of the mean MSE and per-frame mean, SSIM, LPIPS with 95% CIs, model beside
copy-last), the VAE's reconstruction floor and the metadata predictor's one-step errors.
Output is deterministic: re-running on the same files gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuralgym.cli import sibling_script
from neuralgym.data import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
BASELINE = "copy-last"
TARGET_HORIZONS = (1, 2, 4)
COPY_LAST_FRACTION = 0.25  # target: model MSE <= this x copy-last MSE

# Li et al., "Beyond Single-Step: Multi-Frame Action-Conditioned Video Generation for
# Reinforcement Learning Environments", Table 2 (conditioned on future actions only):
# game -> generated frames -> (MSE, PSNR, LPIPS).
TABLE2_SOURCE = "Li et al., Beyond Single-Step, Table 2"
TABLE2: dict[str, dict[int, tuple[float, float, float]]] = {
    "Breakout": {1: (13.1859, 36.9485, 0.0132), 2: (13.3697, 36.8881, 0.0356),
                 4: (14.3638, 36.5727, 0.0662)},
    "Pong": {1: (12.2973, 37.4956, 0.0122), 2: (12.4529, 37.3184, 0.0217),
             4: (12.9572, 37.8253, 0.0390)},
    "DemonAttack": {1: (4.6977, 41.4244, 0.0558), 2: (5.0467, 41.1289, 0.0665),
                    4: (5.1662, 41.0179, 0.0670)},
}

METRIC_ROWS = (  # (JSON key, row label, digits)
    ("mse", "MSE", 2),
    ("psnr_of_mean_mse", "PSNR of the mean MSE (dB)", 2),
    ("psnr_mean_per_frame", "PSNR, per-frame mean (dB)", 2),
    ("ssim", "SSIM", 4),
    ("lpips", "LPIPS", 4),
)
INFINITE_PSNR = ("PSNR of a frame is infinite when it is predicted exactly (MSE 0), so the "
                 "per-frame mean is infinite as soon as one frame is; use the PSNR of the mean "
                 "MSE.")
LABELS = {"gpu_time": "GPU time", "data": "data"}  # sidecar training keys, as shown
SIDECAR_REQUIRED = ("model", "machine", "commit", "data", "training")


class ReportError(Exception):
    """A problem with the results folder, explained to the user."""


@dataclass
class Result:
    name: str  # file stem
    path: Path
    data: dict[str, Any]
    meta: dict[str, Any]
    models: dict[str, str] = field(default_factory=dict)  # JSON predictor name -> display name

    @property
    def env_id(self) -> str:
        return self.data["env_id"]


def game_name(env_id: str) -> str:
    """"NeuralBreakout-v0" -> "Breakout"."""
    return re.sub(r"-v\d+$", "", re.sub(r"^Neural", "", env_id))


# -- loading ----------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not valid JSON: {e}") from None


def read_paired(path: Path) -> dict[str, Any]:
    """A paired_rollout.py JSON, checked: its keys, a dict per predictor, copy-last among
    them."""
    data = read_json(path)
    missing = [k for k in ("env_id", "predictors", "n_starts")
               if not isinstance(data, dict) or k not in data]
    if missing:
        raise ReportError(f"{path} is not a paired_rollout.py result (missing {missing}); "
                          "move other JSON files out of the results folder")
    preds = data["predictors"]
    if not isinstance(preds, dict) or not all(isinstance(v, dict) for v in preds.values()):
        raise ReportError(f"{path} is not a paired_rollout.py result (its predictors are not "
                          "one object each)")
    if BASELINE not in preds:
        raise ReportError(f"{path} has no {BASELINE} predictor to compare with")
    return data


def load_result(path: Path) -> Result:
    data = read_paired(path)
    meta_path = path.with_name(f"{path.stem}.meta.json")
    if not meta_path.is_file():
        raise ReportError(
            f"{path.name} has no sidecar {meta_path.name}: write one with the keys "
            f"{', '.join(SIDECAR_REQUIRED)} (layout in benchmarks/report.py's docstring)")
    meta = read_json(meta_path)
    lacking = [k for k in SIDECAR_REQUIRED if k not in meta]
    if lacking:
        raise ReportError(f"{meta_path} lacks {lacking} (layout in benchmarks/report.py)")
    names = [n for n in data["predictors"] if n != BASELINE]
    if not names:
        raise ReportError(f"{path} holds only {BASELINE}: no model to report")
    display = meta["model"]
    if isinstance(display, str):
        if len(names) > 1:
            raise ReportError(f"{path} has {len(names)} models ({names}): give the sidecar's "
                              "'model' as {predictor name: display name}")
        models = {names[0]: display}
    else:
        unnamed = [n for n in names if n not in display]
        if unnamed:
            raise ReportError(f"{meta_path}'s 'model' names no display name for {unnamed}")
        models = {n: display[n] for n in names}
    return Result(path.stem, path, data, meta, models)


def load_results(folder: Path) -> list[Result]:
    if not folder.is_dir():
        raise ReportError(f"results folder {folder} does not exist")
    paths = sorted(p for p in folder.glob("*.json") if not p.name.endswith(".meta.json"))
    if not paths:
        raise ReportError(f"no paired-rollout JSON in {folder}: run benchmarks/paired_rollout.py "
                          "--json <folder>/<name>.json and write its <name>.meta.json sidecar")
    return sorted((load_result(p) for p in paths),
                  key=lambda r: (r.env_id, int(r.meta.get("order", 100)), r.name))


def resolve(path: str) -> Path:
    """A sidecar path: absolute, or relative to the repository root."""
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def link(target: Path, out: Path) -> str:
    """Path of `target` relative to the markdown file's folder, with forward slashes."""
    return Path(os.path.relpath(target.resolve(), out.resolve().parent)).as_posix()


# -- formatting -------------------------------------------------------------------------------


def num(x: float, digits: int) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def stat(summary: dict[str, Any], digits: int, notes: Notes) -> str:
    """"mean [lo, hi]", or "not measured (note n)" when the JSON holds no number."""
    if summary.get("mean") is None:
        return f"not measured (note {notes.ref(summary.get('note') or 'no reason recorded')})"
    text = num(summary["mean"], digits)
    if "ci95" in summary:
        lo, hi = summary["ci95"]
        text += f" [{num(lo, digits)}, {num(hi, digits)}]"
    if math.isinf(summary["mean"]):
        text += f" (note {notes.ref(INFINITE_PSNR)})"
    return text


class Notes:
    """Numbered notes of one result section, in order of first use."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1

    def markdown(self) -> list[str]:
        return [f"{i}. {t}" for i, t in enumerate(self.texts, 1)]


def mean(result: Result, predictor: str, h: int, key: str = "mse") -> float | None:
    return predictor_mean(result.data["predictors"][predictor], h, key)


def predictor_mean(predictor: dict[str, Any], h: int, key: str = "mse") -> float | None:
    """A predictor's mean `key` at horizon h in a paired_rollout.py JSON; None where the JSON
    has none (or not in that shape)."""
    try:
        value = predictor["horizons"][str(h)][key]["mean"]
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def glance(results: list[Result]) -> list[str]:
    """One row per model of every result: its MSE over copy-last's at each horizon (means)."""
    hs = sorted({h for r in results for m in r.models for h in horizons(r, m)})
    lines = ["At a glance: model MSE / copy-last MSE (means over the result's starts; below 1 "
             "is better than copy-last; the sections below give the CIs):", "",
             "| game | result | model | starts | " + " | ".join(f"h={h}" for h in hs) + " |",
             "| --- | --- | --- | ---: | " + " | ".join("---:" for _ in hs) + " |"]
    for r in results:
        for m, display in r.models.items():
            cells = [ratio(mean(r, m, h), mean(r, BASELINE, h)) if h in horizons(r, m) else "-"
                     for h in hs]
            lines.append(f"| {game_name(r.env_id)} | {r.name} | {display} | {r.data['n_starts']} "
                         f"| " + " | ".join(cells) + " |")
    return [*lines, ""]


def horizons(result: Result, predictor: str) -> list[int]:
    present = result.data["predictors"][predictor]["horizons"]
    base = result.data["predictors"][BASELINE]["horizons"]
    return sorted(int(h) for h in present if h in base)


# -- plot -------------------------------------------------------------------------------------


def plot(result: Result, model: str, display: str, floor: tuple[str, float] | None,
         png: Path) -> None:
    """MSE against horizon (log-log) for the model and copy-last with their 95% CI bands."""
    hs = horizons(result, model)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, label, color in ((model, display, "tab:blue"), (BASELINE, BASELINE, "tab:gray")):
        per_h = result.data["predictors"][name]["horizons"]
        m = [per_h[str(h)]["mse"]["mean"] for h in hs]
        lo = [per_h[str(h)]["mse"]["ci95"][0] for h in hs]
        hi = [per_h[str(h)]["mse"]["ci95"][1] for h in hs]
        ax.plot(hs, m, "o-", color=color, label=f"{label} (95% CI band)")
        ax.fill_between(hs, lo, hi, color=color, alpha=0.2, linewidth=0)
    per_h = result.data["predictors"][BASELINE]["horizons"]
    ax.plot(hs, [COPY_LAST_FRACTION * per_h[str(h)]["mse"]["mean"] for h in hs], ":",
            color="tab:gray", label=f"target: {COPY_LAST_FRACTION:g} x copy-last")
    table2 = TABLE2.get(game_name(result.env_id))
    if table2:
        t2 = sorted(table2)
        ax.plot(t2, [table2[h][0] for h in t2], "x", color="tab:red", markersize=9,
                label=TABLE2_SOURCE)
    if floor is not None:
        ax.axhline(floor[1], color="tab:green", linestyle="--", linewidth=1,
                   label=f"{floor[0]} reconstruction floor ({floor[1]:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(hs, [str(h) for h in hs])
    ax.set_xlabel("horizon h (steps after the last context frame)")
    ax.set_ylabel("MSE (0-255 scale, log)")
    ax.set_title(f"{result.env_id}: {result.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = png.with_name(f".tmp-{os.getpid()}-{png.name}")
    fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, png)


# -- sections ---------------------------------------------------------------------------------


def table2_section(game: str) -> list[str]:
    rows = TABLE2.get(game)
    if rows is None:
        return [f"{TABLE2_SOURCE} has no {game}; only the copy-last target applies.", ""]
    lines = [f"{TABLE2_SOURCE} ({game}, conditioned on future actions only; their data is "
             "1M PPO-agent steps and their model a fine-tuned OpenSora, so the setting differs "
             "from ours):", "",
             "| generated frames | MSE | PSNR (dB) | LPIPS |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {h} | {m:.4f} | {p:.4f} | {lp:.4f} |" for h, (m, p, lp) in sorted(rows.items())]
    return [*lines, ""]


def glance_table(result: Result, model: str, display: str) -> list[str]:
    """MSE per horizon, model beside copy-last; with each start's values in the JSON
    (paired_rollout.py --per-start), their medians too."""
    hs = horizons(result, model)
    pick = [result.data["predictors"][p]["horizons"] for p in (model, BASELINE)]
    per_start = all(isinstance(p[str(h)]["mse"].get("per_start"), list) for h in hs for p in pick)
    extra = " median per start: model / copy-last |" if per_start else ""
    lines = [f"| h | {display} MSE [95% CI] | copy-last MSE [95% CI] | model / copy-last |"
             + extra, "| ---: | --- | --- | ---: |" + (" ---: |" if per_start else "")]
    notes = Notes()  # MSE always has numbers
    for h in hs:
        s_m, s_c = (p[str(h)]["mse"] for p in pick)
        cells = f"| {h} | {stat(s_m, 2, notes)} | {stat(s_c, 2, notes)} | " \
                f"{ratio(s_m['mean'], s_c['mean'])} |"
        if per_start:
            cells += (f" {num(statistics.median(s_m['per_start']), 2)} / "
                      f"{num(statistics.median(s_c['per_start']), 2)} |")
        lines.append(cells)
    return [*lines, ""]


def ratio(m: float | None, c: float | None) -> str:
    if m is None or c is None:
        return "—"
    if c == 0:
        return "∞" if m > 0 else "—"
    return f"{m / c:.2f}"


def verdict(result: Result, model: str, h: int) -> str:
    """One line: does the model's MSE at h meet both targets, and by how much does it miss?"""
    per_h = result.data["predictors"][model]["horizons"].get(str(h))
    c = mean(result, BASELINE, h)
    if per_h is None or c is None:
        return f"- h = {h}: not measured in this result."
    m = per_h["mse"]["mean"]
    upper = per_h["mse"]["ci95"][1]
    parts = []
    met = []
    t2 = TABLE2.get(game_name(result.env_id), {}).get(h)
    if t2 is not None:
        ok = m < t2[0]
        met.append(ok)
        if ok:
            robust = "also below" if upper < t2[0] else "not below"
            parts.append(f"below Table 2's {t2[0]:.2f} by {t2[0] - m:.2f} (upper 95% bound "
                         f"{upper:.2f} {robust})")
        else:
            parts.append(f"**misses Table 2's {t2[0]:.2f} by {m - t2[0]:.2f}** "
                         f"({m / t2[0]:.2f}x it)")
    quarter = COPY_LAST_FRACTION * c
    ok = m <= quarter
    met.append(ok)
    if ok:
        robust = "also within it" if upper <= quarter else "not within it"
        parts.append(f"{m / c:.2f}x copy-last, within a quarter of copy-last's {c:.2f} "
                     f"(<= {quarter:.2f}) by {quarter - m:.2f} (upper 95% bound {upper:.2f} "
                     f"{robust})")
    else:
        parts.append(f"**misses a quarter of copy-last's {c:.2f} (<= {quarter:.2f}) by "
                     f"{m - quarter:.2f}**: it is {m / c:.2f}x copy-last, the target 0.25x")
    head = ("MEETS the targets" if all(met) else
            f"MISSES {sum(not x for x in met)} of {len(met)} targets")
    return f"- h = {h}: **{head}**. MSE {m:.2f}: " + "; ".join(parts) + "."


def horizon_tables(result: Result, model: str, display: str, notes: Notes) -> list[str]:
    lines: list[str] = []
    for h in horizons(result, model):
        s_m = result.data["predictors"][model]["horizons"][str(h)]
        s_c = result.data["predictors"][BASELINE]["horizons"][str(h)]
        lines += [f"**h = {h}** (n = {s_m['mse'].get('n', '?')} starts)", "",
                  f"| metric [95% CI] | {display} | copy-last | model / copy-last |",
                  "| --- | --- | --- | ---: |"]
        for key, label, digits in METRIC_ROWS:
            r = ratio(s_m[key].get("mean"), s_c[key].get("mean")) if key == "mse" else ""
            lines.append(f"| {label} | {stat(s_m[key], digits, notes)} | "
                         f"{stat(s_c[key], digits, notes)} | {r} |")
        lines.append("")
    return lines


def vae_section(folder: Path | None, shown: str | None) -> tuple[list[str], float | None]:
    if folder is None:
        return ["VAE reconstruction floor: the sidecar names no model folder.", ""], None
    path = folder / "vae_eval.json"
    if not path.is_file():
        return [f"VAE reconstruction floor: `{shown}` has no vae_eval.json.", ""], None
    v = read_json(path)
    lo, hi = v["mse_ci95"]
    lines = [f"VAE reconstruction floor (`{shown}/vae_eval.json`: encode-decode of "
             f"{v.get('n_frames', '?')} {v.get('split', '?')}-split frames, VAE step "
             f"{v.get('step', '?')}, {v.get('parameters', 0):,} parameters): MSE "
             f"{v['mse']:.2f} [{lo:.2f}, {hi:.2f}], PSNR of the mean MSE "
             f"{v['psnr_of_mean_mse']:.2f} dB, per-frame mean {v['psnr_mean_per_frame']:.2f} dB: "
             "roughly the lowest MSE a prediction decoded by this VAE can reach.", ""]
    return lines, float(v["mse"])


def decoder_section(folder: Path | None, shown: str | None) -> tuple[list[str], float | None]:
    """The fast decoder's reconstruction floor (decoder_eval.json), where the folder has one."""
    if folder is None or not (folder / "decoder_eval.json").is_file():
        return [], None
    d = read_json(folder / "decoder_eval.json")
    lo, hi = d["mse_ci95"]
    return [f"Fast decoder floor (`{shown}/decoder_eval.json`: the VAE's latents of "
            f"{d.get('n_frames', '?')} {d.get('split', '?')}-split frames decoded by the fast "
            f"decoder, step {d.get('step', '?')}, {d.get('parameters', 0):,} parameters): MSE "
            f"{d['mse']:.2f} [{lo:.2f}, {hi:.2f}], PSNR of the mean MSE "
            f"{d['psnr_of_mean_mse']:.2f} dB: the floor of the predictions it decodes.", ""], \
        float(d["mse"])


def metadata_section(folder: Path | None, shown: str | None) -> list[str]:
    if folder is None or not (folder / "metadata_eval.json").is_file():
        return []
    e = read_json(folder / "metadata_eval.json")
    lines = [f"Metadata predictor g_phi (`{shown}/metadata_eval.json`: {e.get('kind', '?')}, "
             + (f"{e['steps']} steps" if e.get("steps") is not None
                else "evaluated as it is, its training steps not recorded here")
             + f", {e.get('parameters', 0):,} parameters), one-step "
             f"errors on {e.get('test_windows', '?')} test windows against copying the previous "
             f"value: normalised MAE {e['normalised_mae']:.4f} vs copy-previous "
             f"{e['copy_normalised_mae']:.4f}."
             + (f" Note: {e['note']}." if e.get("note") else ""), "",
             "| variable | kind | MAE | copy-previous MAE | accuracy | copy-previous accuracy "
             "| share of steps it changes |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, v in e["variables"].items():
        acc = f"{v['accuracy']:.4f}" if "accuracy" in v else "—"
        copy_acc = f"{v['copy_accuracy']:.4f}" if "copy_accuracy" in v else "—"
        lines.append(f"| {name} | {v['kind']} | {v['mae']:.4f} | {v['copy_mae']:.4f} | {acc} | "
                     f"{copy_acc} | {v['changed']:.4f} |")
    return [*lines, ""]


def result_section(result: Result, results_dir: Path, out: Path) -> list[str]:
    meta, data = result.meta, result.data
    shown = meta.get("model_folder")
    folder = resolve(shown) if shown else None
    machine = data.get("machine") or {}
    json_machine = ", ".join(f"{k} {machine[k]}" for k in ("gpu", "device", "cpus", "platform")
                             if machine.get(k) is not None)
    sidecar = result.path.with_name(f"{result.name}.meta.json")
    lines = [f"### {result.name}", ""]
    facts = [
        ("Results", f"[{result.path.name}]({link(result.path, out)}) and "
                    f"[{sidecar.name}]({link(sidecar, out)})"),
        ("Machine", f"{meta['machine']} (the JSON records: {json_machine or 'nothing'}; "
                    f"torch {data.get('torch', '?')})"),
        ("Date", meta.get("date")),
        ("Commit", meta["commit"] + (f" (the JSON's commit: {data['commit']})"
                                     if data.get("commit") else " (the JSON records none)")),
        ("Data", f"{meta['data']} (the JSON: split {data.get('split')}, {data['n_starts']} "
                 f"starts in {data.get('n_episodes', '?')} episodes, context "
                 f"{data.get('context', '?')} frames, seed {data.get('seed', '?')}, "
                 f"{data.get('replay_mismatches', '?')} replay mismatches)"),
        ("Model folder", f"`{shown}`" if shown else None),
        ("Produced by", f"`{meta['command']}`" if meta.get("command") else None),
        ("Side-by-side video", f"[{meta['video']}]({link(resolve(meta['video']), out)})"
                               if meta.get("video") else None),
        ("Notes", meta.get("notes")),
    ]
    lines += [f"- {k}: {v}" for k, v in facts if v]
    if data.get("skipped_predictors"):
        lines.append(f"- Predictors skipped by the run: {data['skipped_predictors']}")
    lines.append("- Training each component has had:")
    for component, t in meta["training"].items():
        if isinstance(t, dict):
            text = "; ".join(f"{LABELS.get(k, k)}: {v}" for k, v in t.items())
        else:
            text = str(t)
        lines.append(f"  - {component}: {text}")
    lines.append("")
    vae_lines, vae_floor = vae_section(folder, shown)
    decoder_lines, decoder_floor = decoder_section(folder, shown)
    for model, display in result.models.items():
        notes = Notes()
        png = results_dir / (f"{result.name}.png" if len(result.models) == 1 else
                             f"{result.name}-{re.sub(r'[^A-Za-z0-9]+', '-', display)}.png")
        # the floor of the decoder this predictor's frames came from (the JSON records it)
        fast = data["predictors"][model].get("decoder") == "fast"
        floor = (("Fast decoder", decoder_floor) if fast and decoder_floor is not None else
                 ("VAE", vae_floor) if vae_floor is not None else None)
        plot(result, model, display, floor, png)
        lines += [f"#### {display} vs copy-last", "",
                  f"Model `{display}` (in the JSON: `{model}`, context "
                  f"{data['predictors'][model].get('context', '?')} frames).", "",
                  f"![MSE against horizon: {display} and copy-last]({link(png, out)})", "",
                  f"MSE (0-255 scale) against horizon, log-log, 95% CI bands; "
                  f"[{png.name}]({link(png, out)}).", "",
                  "MSE at each horizon (mean over starts, bootstrap 95% CI; ratio of the means; "
                  "the median over starts where the JSON keeps each start's values):",
                  "", *glance_table(result, model, display),
                  f"Targets at h = 1 / 2 / 4: MSE below {TABLE2_SOURCE} and at most "
                  f"{COPY_LAST_FRACTION:g} x copy-last's (means):", ""]
        lines += [verdict(result, model, h) for h in TARGET_HORIZONS]
        lines += ["", *horizon_tables(result, model, display, notes)]
        if notes.texts:
            lines += ["Notes:", "", *notes.markdown(), ""]
    lines += vae_lines + decoder_lines + metadata_section(folder, shown)
    return lines


def render(results: list[Result], results_dir: Path, out: Path, command: str) -> str:
    lines = ["# Benchmarks", "",
             f"Generated by `{command}`; do not edit by hand. Every number comes from the JSON "
             f"files in {results_dir.as_posix()}/ (paired-rollout results and their "
             "`.meta.json` sidecars), the `vae_eval.json` and `metadata_eval.json` of the model "
             "folders the sidecars name (as they are now), the PPO evaluations in ppo/, the "
             "ablation bundles in ablations/, the dream-reward runs in dream_rewards/, the "
             f"throughput runs in throughput/, and {TABLE2_SOURCE} (constants in "
             "benchmarks/report.py).", "",
             "Metrics (DESIGN.md, \"Metrics\"): frames at native resolution, RGB, MSE over all "
             "pixels and channels on the 0-255 scale, PSNR = 10 log10(255^2 / MSE) both from the "
             "mean MSE and as a per-frame mean, SSIM, LPIPS (AlexNet); means over paired starts "
             "with bootstrap 95% CIs. Copy-last predicts o_{t+h} = o_t. A paired start restores "
             "the real emulator and the model from the same frames and feeds both the same "
             "actions.", ""]
    games: dict[str, list[Result]] = {}
    for r in results:
        games.setdefault(r.env_id, []).append(r)
    lines += ["Contents:", ""]
    for env_id, rs in games.items():
        lines.append(f"- {env_id}: " + ", ".join(r.name for r in rs))
    closed_loop = [r.name for r in results if has_closed_loop(r)]
    if closed_loop:
        lines.append(f"- {CLOSED_LOOP_TITLE}: " + ", ".join(closed_loop))
    ppo = subfolders(results_dir / "ppo")
    if ppo:
        lines.append(f"- {PPO_TITLE}: " + ", ".join(p.name for p in ppo))
    ablations = subfolders(results_dir / "ablations")
    if ablations:
        lines.append(f"- {ABLATIONS_TITLE}: " + ", ".join(p.name for p in ablations))
    dream_rewards = result_files(results_dir / "dream_rewards")
    if dream_rewards:
        lines.append(f"- {DREAM_REWARDS_TITLE}: " + ", ".join(p.stem for p in dream_rewards))
    lines += ["", *glance(results)]
    for env_id, rs in games.items():
        lines += [f"## {env_id}", "", *table2_section(game_name(env_id))]
        for r in rs:
            lines += result_section(r, results_dir, out)
    lines += closed_loop_sections(results)
    lines += ppo_sections(ppo, out)
    lines += ablation_sections(ablations, out)
    lines += dream_rewards_sections(results_dir / "dream_rewards")
    lines += throughput_sections(results_dir / "throughput")
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def sidecar(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """`<name>.meta.json` beside `<name>.json`, with `keys` present."""
    meta_path = path.with_name(path.stem + ".meta.json")
    if not meta_path.exists():
        raise ReportError(f"{path} has no sidecar {meta_path.name} ({', '.join(keys)})")
    meta = read_json(meta_path)
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ReportError(f"{meta_path} lacks {', '.join(missing)}")
    return meta


def sidecar_lines(meta: dict[str, Any]) -> list[str]:
    """A sidecar's machine (and date), commit, and its command and notes where it has them."""
    lines = [f"- Machine: {meta['machine']}" + (f", {meta['date']}" if "date" in meta else ""),
             f"- Commit: {meta['commit']}"]
    if "command" in meta:
        lines.append(f"- Command: `{meta['command']}`")
    if "notes" in meta:
        lines.append(f"- Notes: {meta['notes']}")
    return lines


def result_files(folder: Path) -> list[Path]:
    """The results JSONs of a folder, sidecars left out (none when it is absent)."""
    return sorted((p for p in folder.glob("*.json") if not p.name.endswith(".meta.json")),
                  key=natural) if folder.is_dir() else []


DREAM_REWARDS_TITLE = "Dream rewards against the game's"


def dream_rewards_sections(folder: Path) -> list[str]:
    """One section per benchmarks/dream_rewards.py JSON in `folder`."""
    files = result_files(folder)
    if not files:
        return []
    table = sibling_script(__file__, "dream_rewards").markdown_table
    lines = [f"## {DREAM_REWARDS_TITLE}", "",
             "From `benchmarks/dream_rewards.py`: a policy plays N real games and N dreams for "
             "L steps each (episodes restarting as they end); points won and lost per 1,000 "
             "game steps, mean over the envs [bootstrap 95% CI]. Dreams start from the model "
             "folder's start contexts, real games from reset. An agent trained in the dream "
             "learns what the dream pays, so the two should agree.", ""]
    for path in files:
        data, meta = read_json(path), sidecar(path, ("model", "machine", "commit"))
        a = data["args"]
        policy = meta.get("policy") or a["policy"]  # the sidecar may name a PPO model's path
        lines += [f"### {game_name(data['env_id'])}: policy {policy}, {a['envs']} envs x "
                  f"{a['steps']} steps", "", *table(data["results"]), "",
                  f"- File: `{path.as_posix()}`", f"- Model: {meta['model']}",
                  *sidecar_lines(meta), ""]
    return lines


def throughput_sections(folder: Path) -> list[str]:
    """One section per throughput JSON in `folder` (none when the folder is absent)."""
    files = result_files(folder)
    if not files:
        return []
    throughput = sibling_script(__file__, "throughput")  # its tables and targets

    lines = ["## Dream throughput", "",
             "From `benchmarks/throughput.py` (method in its docstring): dream frames per second "
             "of the world model at batch B and S denoising steps, with and without decoding "
             "frames, beside the real emulator on the same host.", ""]
    for path in files:
        data, meta = read_json(path), sidecar(path, ("model", "machine", "commit"))
        data["model"] = {**data["model"], "path": meta["model"]}
        # judged now from the measured points (the JSON's own "targets" are those of the
        # throughput.py that wrote it; a run cut short has none)
        data["targets"] = throughput.targets(data, throughput.targets_steps(
            data["model"]["default_steps"], data["settings"]["steps"]))
        body = throughput.markdown(data).replace("## Dream throughput: ", "### ", 1)
        head, _, rest = body.partition("\n")
        lines += [head, "", f"- File: `{path.as_posix()}`"
                  + ("" if data.get("complete") else " (the run was cut short: the points "
                     "it measured are shown, the others are missing)"),
                  *sidecar_lines(meta), "", rest.lstrip("\n"), ""]
    return lines


# -- closed-loop metadata and rewards ----------------------------------------------------------

CLOSED_LOOP_TITLE = "Closed-loop metadata and rewards"


def has_closed_loop(result: Result) -> bool:
    """Whether the JSON holds paired_rollout.py's closed-loop "metadata" block for a model
    (older results do not)."""
    preds = result.data["predictors"]
    return any(isinstance(preds[m].get("metadata"), dict) for m in result.models)


def closed_loop_table(result: Result, model: str, display: str) -> list[str]:
    """Per horizon: the real reward sum over steps 1..h, the model's predicted sum and
    |error| with CIs beside copy-last's |error|, the share of starts whose episode end
    differs, and the MAE of the variables the game's rules read, model / copy-last."""
    block = result.data["predictors"][model]["metadata"]
    base = (result.data["predictors"][BASELINE].get("metadata") or {}).get("horizons", {})
    names = block.get("rule_variables", [])
    notes = Notes()
    lines = [f"| h | real reward sum | {display} predicted sum [95% CI] | {display} \\|error\\| "
             "[95% CI] | copy-last \\|error\\| [95% CI] | episode end differs: model / "
             "copy-last | " + " | ".join(f"{n} MAE: model / copy-last" for n in names) + " |",
             "| ---: | ---: | --- | --- | --- | ---: |" + " ---: |" * len(names)]
    for h in sorted(block["horizons"], key=int):
        m, c = block["horizons"][h], base.get(h)
        r = m["reward_sum"]
        copy_error = stat(c["reward_sum"]["abs_error"], 2, notes) if c else "—"
        ends = [num(x["episode_end"]["mismatch"]["mean"], 2) if x else "—" for x in (m, c)]
        maes = [" / ".join(num(x["mae"][n]["mean"], 2) if x and n in x["mae"] else "—"
                           for x in (m, c)) for n in names]
        lines.append(f"| {h} | {num(r['real']['mean'], 2)} | {stat(r['predicted'], 2, notes)} | "
                     f"{stat(r['abs_error'], 2, notes)} | {copy_error} | {' / '.join(ends)} | "
                     + " | ".join(maes) + " |")
    lines.append("")
    if notes.texts:
        lines += ["Notes:", "", *notes.markdown(), ""]
    return lines


def closed_loop_sections(results: list[Result]) -> list[str]:
    """The closed-loop section: per game, one table per model of every result whose JSON has
    the "metadata" block (none without such results)."""
    shown = [r for r in results if has_closed_loop(r)]
    if not shown:
        return []
    lines = [f"## {CLOSED_LOOP_TITLE}", "",
             "From the `metadata` block of `benchmarks/paired_rollout.py`'s JSON: from the same "
             "real context and under the same actions as the frames above, each predictor's own "
             "game variables m_{t+1} .. m_{t+h} (a world model's from its own predictions, step "
             "after step) against the real emulator's. The reward is summed over steps 1..h by "
             "the game's own rule on (previous, current) metadata, the first previous being the "
             "last real context metadata m_t, on the predicted and on the real metadata; "
             "|error| is the mean over starts of |predicted sum - real sum| (bootstrap 95% CIs). "
             "Copy-last keeps m_t, so it predicts no reward and its |error| is the mean |real "
             "sum|. \"Episode end differs\": the share of starts where \"the episode ended at or "
             "before h\" is true for one and false for the other. MAE on the raw scale of the "
             "variables the game's reward and episode-end rules read.", ""]
    for env_id in dict.fromkeys(r.env_id for r in shown):
        lines += [f"### {game_name(env_id)}", ""]
        for r in (r for r in shown if r.env_id == env_id):
            for model, display in r.models.items():
                if isinstance(r.data["predictors"][model].get("metadata"), dict):
                    lines += [f"{r.name}: `{display}` vs copy-last on {r.data['n_starts']} "
                              "starts:", "", *closed_loop_table(r, model, display)]
    return lines


# -- PPO: trained in the dream, scored in the real game ---------------------------------------

PPO_TITLE = "PPO: trained in the dream, scored in the real game"
PPO_TARGET = 0.8  # the target: dream-trained return >= this x real-trained return
PPO_POLICIES = (  # (file, meta "steps"/"seconds" key or None, row label)
    ("ppo-real.json", "real", "PPO trained on the real game"),
    ("ppo-dream.json", "dream", "PPO trained in the dream"),
    ("ppo-random.json", None, "random policy"),
)
PPO_CURVES = ("real.curve.csv", "dream.curve.csv")
PPO_PLOT = "ppo-curves.png"
PPO_REQUIRED = ("meta.json", *(f for f, _, _ in PPO_POLICIES))  # curves and plot: optional
PPO_META_REQUIRED = ("title", "machine", "commit", "dream_model", "steps")
PPO_EVAL_REQUIRED = ("mean_return", "ci95", "episodes")


def load_ppo(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(meta, {file name: evaluate_policy.py JSON}) of one PPO folder; ReportError saying what
    is missing or malformed."""
    missing = [f for f in PPO_REQUIRED if not (folder / f).is_file()]
    if missing:
        raise ReportError(f"it lacks {', '.join(missing)}")
    meta = read_json(folder / "meta.json")
    if not isinstance(meta, dict):
        raise ReportError("its meta.json is not a JSON object")
    lacking = [k for k in PPO_META_REQUIRED if k not in meta]
    if lacking:
        raise ReportError(f"its meta.json lacks {', '.join(lacking)}")
    if not isinstance(meta["steps"], dict):
        raise ReportError('its meta.json\'s "steps" is not {"real": N, "dream": N}')
    evals = {}
    for name, _, _ in PPO_POLICIES:
        data = read_json(folder / name)
        if not isinstance(data, dict):
            raise ReportError(f"its {name} is not a JSON object")
        lacking = [k for k in PPO_EVAL_REQUIRED if k not in data]
        if lacking:
            raise ReportError(f"its {name} lacks {', '.join(lacking)}")
        ci = data["ci95"]
        if not (isinstance(data["mean_return"], (int, float)) and isinstance(ci, list)
                and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)):
            raise ReportError(f"its {name} has no numeric mean_return and ci95 [lo, hi]")
        evals[name] = data
    return meta, evals


def curve_points(path: Path) -> int:
    """Rows of a learning-curve CSV (step,mean_return,episodes,wall_s), header not counted."""
    return sum(1 for row in path.read_text().splitlines()[1:] if row.strip())


def curve_text(path: Path, out: Path) -> str:
    if not path.is_file():
        return f"{path.name} (missing)"
    k = curve_points(path)
    what = f"{k} points" if k else "no points: no training episode ended"
    return f"[{path.name}]({link(path, out)}) ({what})"


def ppo_verdict(meta: dict[str, Any], evals: dict[str, dict[str, Any]]) -> list[str]:
    """The dream/real ratio against the target, or why there is none; whether the real agent
    is distinguishable from random; whether the agents had the same number of steps."""
    real, dream, rand = (evals[f] for f, _, _ in PPO_POLICIES)
    r, d, z = (float(e["mean_return"]) for e in (real, dream, rand))
    (r_lo, r_hi), (z_lo, z_hi) = real["ci95"], rand["ci95"]
    lines: list[str] = []
    why = ["not above 0" if r <= 0 else "",
           f"not above the random policy's {num(z, 2)}" if r <= z else ""]
    why = [w for w in why if w]
    if why:
        lines.append(f"- Dream / real return: **no ratio given**: the real-trained agent's mean "
                     f"return {num(r, 2)} is {' and '.join(why)}, so a fraction of it means "
                     f"nothing (target: at least {PPO_TARGET:.0%}).")
    else:
        frac = d / r
        met = "met" if frac >= PPO_TARGET else "not met"
        lines.append(f"- Dream / real return: {num(d, 2)} / {num(r, 2)} = **{frac:.2f}** "
                     f"({frac:.0%}); the issue's target of at least {PPO_TARGET:.0%}: "
                     f"**{met}**.")
    if r > z:  # the share of the real agent's gain over random (returns may be negative)
        norm = (d - z) / (r - z)
        met = "met" if norm >= PPO_TARGET else "not met"
        lines.append(f"- Random-normalised: (dream - random) / (real - random) = "
                     f"({num(d, 2)} - {num(z, 2)}) / ({num(r, 2)} - {num(z, 2)}) = "
                     f"**{norm:.2f}**: the dream agent has {norm:.0%} of the real agent's gain "
                     f"over the random policy (the same target, {PPO_TARGET:.0%}, read on "
                     f"this scale, which also holds where returns are negative: **{met}**).")
    if r_lo <= z_hi and z_lo <= r_hi:
        lines.append(f"- **The real-trained agent is not distinguishable from the random "
                     f"policy**: their 95% CIs [{num(r_lo, 2)}, {num(r_hi, 2)}] and "
                     f"[{num(z_lo, 2)}, {num(z_hi, 2)}] overlap, so the dream / real "
                     "comparison says nothing about the dream.")
    steps = meta["steps"]
    s_r, s_d = steps.get("real"), steps.get("dream")
    if (isinstance(s_r, int) and isinstance(s_d, int) and s_r > 0 and s_r != s_d
            and abs(s_d - s_r) < 0.005 * s_r):  # a rollout's worth apart: what PPO rounds to
        lines.append(f"- The agents had the same steps, to a rollout: {s_d:,} in the dream, "
                     f"{s_r:,} in the real game.")
    elif isinstance(s_r, int) and isinstance(s_d, int) and s_r > 0 and s_r != s_d:
        lines.append(f"- The agents had different step counts: the dream agent had "
                     f"{s_d / s_r:.0%} of the real agent's steps ({s_d:,} vs {s_r:,}).")
    elif s_r is not None and s_r == s_d:
        lines.append(f"- Both agents had {s_r:,} training steps.")
    return lines


def ppo_section(folder: Path, meta: dict[str, Any], evals: dict[str, dict[str, Any]],
                out: Path) -> list[str]:
    steps, seconds = meta["steps"], meta.get("seconds")
    if not isinstance(seconds, dict):
        seconds = {}
    lines = [f"### {meta['title']}", "",
             "| policy | training steps | training time | real-game return, mean [95% CI] "
             "| episodes |", "| --- | ---: | ---: | --- | ---: |"]
    for name, key, label in PPO_POLICIES:
        e = evals[name]
        lo, hi = e["ci95"]
        n = steps.get(key) if key else None
        s = seconds.get(key) if key else None
        lines.append(f"| {label} | {f'{n:,}' if isinstance(n, int) else '-'} | "
                     f"{f'{s:,} s' if isinstance(s, (int, float)) else '-'} | "
                     f"{num(e['mean_return'], 2)} [{num(lo, 2)}, {num(hi, 2)}] | "
                     f"{e['episodes']} |")
    real = evals[PPO_POLICIES[0][0]]
    how = "greedy actions" if real.get("deterministic") else "actions sampled from the policy"
    lines += ["", f"All three scored in the real game ({real.get('env', meta.get('env_id', '?'))}"
              f", {how}, seed {real.get('seed', '?')}).", "",
              *ppo_verdict(meta, evals), ""]
    png = folder / PPO_PLOT
    if png.is_file():
        lines += [f"![PPO learning curves: {meta['title']}]({link(png, out)})", "",
                  "Mean return of the training episodes against training steps, beside the "
                  f"real-game scores; [{png.name}]({link(png, out)}).", ""]
    else:
        lines += [f"No learning-curve plot: the folder has no {PPO_PLOT}.", ""]
    facts = [
        ("Results", ", ".join(f"[{f}]({link(folder / f, out)})"
                              for f in ("meta.json", *(f for f, _, _ in PPO_POLICIES)))),
        ("Learning curves", ", ".join(curve_text(folder / c, out) for c in PPO_CURVES)),
        ("Machine", meta["machine"]),
        ("Date", meta.get("date")),
        ("Commit", meta["commit"]),
        ("Dream model", meta["dream_model"]),
        ("Command", f"`{meta['command']}`" if meta.get("command") else None),
        ("Notes", meta.get("notes")),
    ]
    lines += [f"- {k}: {v}" for k, v in facts if v]
    return [*lines, ""]


def ppo_sections(folders: list[Path], out: Path) -> list[str]:
    """The PPO section: one subsection per PPO folder (none without folders);
    a folder missing a file is skipped with a note line."""
    if not folders:
        return []
    lines = [f"## {PPO_TITLE}", "",
             "Per game: one PPO agent trained on the real game, one trained in the world "
             "model's dream (`agents/train_ppo.py`); both, and a uniform random policy, scored "
             "in the real game by `agents/evaluate_policy.py` (mean episode return, percentile "
             "bootstrap 95% CI over episodes). The issue's target: the dream-trained agent "
             f"reaches at least {PPO_TARGET:.0%} of the real-trained agent's return; a ratio is "
             "only given when the real-trained agent's return is above 0 and above random's.",
             ""]
    for path in folders:
        try:
            meta, evals = load_ppo(path)
        except ReportError as e:
            lines += [f"Skipped `{path.as_posix()}`: {e}.", ""]
            continue
        lines += ppo_section(path, meta, evals, out)
    return lines


ABLATIONS_TITLE = "Ablations"
ABLATION_GROUPS = (  # (group JSON in <folder>/results/, what it compares)
    ("metadata", "(a) metadata-conditioned vs metadata-ignorant denoiser"),
    ("frames", "(b) frames per call T = 1, 2, 4, future vs past + future actions"),
    ("actions", "(c) learned action embedding vs one-hot"),
)
ABLATION_HORIZONS = (1, 4, 16, 64)
ABLATION_META_REQUIRED = ("title", "machine", "commit", "command")


def natural(path: Path) -> list[tuple[int, str]]:
    """Sort key of a result's name with its numbers compared as numbers (session9 before
    session10)."""
    return [(int(part), "") if part.isdigit() else (-1, part)
            for part in re.split(r"(\d+)", path.name)]


def subfolders(folder: Path) -> list[Path]:
    """The folders in `folder` (a PPO run or an ablations bundle each), sorted (`natural`);
    none when `folder` is absent."""
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=natural) \
        if folder.is_dir() else []


def ablation_section(folder: Path, out: Path) -> list[str]:
    """A summary of one bundle: per group, each variant's MSE as a fraction of copy-last's at
    a few horizons; the paired CIs and every other number stay in its ABLATIONS.md."""
    if not (folder / "meta.json").is_file():
        raise ReportError(f"no meta.json in {folder}")
    meta = read_json(folder / "meta.json")
    missing = [k for k in ABLATION_META_REQUIRED if k not in meta]
    if missing:
        raise ReportError(f"{folder / 'meta.json'} lacks {', '.join(missing)}")
    report = folder / "ABLATIONS.md"
    lines = [f"### {meta['title']}", ""]
    if report.is_file():
        lines += [f"Full tables, paired differences with CIs and the g_phi comparison: "
                  f"[{report.name}]({link(report, out)}) (`benchmarks/ablation_report.py`).", ""]
    hs = " | ".join(f"h={h}" for h in ABLATION_HORIZONS)
    for group, what in ABLATION_GROUPS:
        path = folder / "results" / f"{group}.json"
        if not path.is_file():
            continue
        data = read_paired(path)
        preds = data["predictors"]
        lines += [f"{what}: model MSE / copy-last MSE on {data.get('n_starts', '?')} paired "
                  f"starts ({group}.json):", "",
                  f"| variant | {hs} |", "| --- |" + " ---: |" * len(ABLATION_HORIZONS)]
        for name, pred in preds.items():
            if name == BASELINE:
                continue
            cells = [ratio(predictor_mean(pred, h), predictor_mean(preds[BASELINE], h))
                     for h in ABLATION_HORIZONS]
            lines.append(f"| {Path(name).name} | " + " | ".join(cells) + " |")
        lines.append("")
    facts = [("Data", meta.get("data")), ("Machine", meta["machine"]),
             ("Date", meta.get("date")),
             ("Commit", meta["commit"]), ("Command", f"`{meta['command']}`"),
             ("Notes", meta.get("notes"))]
    lines += [f"- {k}: {v}" for k, v in facts if v]
    return [*lines, ""]


def ablation_sections(folders: list[Path], out: Path) -> list[str]:
    """The ablations section: one subsection per bundle (none without bundles); a bundle
    that cannot be read is skipped with a note line."""
    if not folders:
        return []
    lines = [f"## {ABLATIONS_TITLE}", "",
             "`training/ablations.sh`: denoiser variants trained from scratch with the same "
             "data, steps, batch and seed, then rolled out on the same held-out starts "
             "(`benchmarks/paired_rollout.py --per-start`), beside copy-last.", ""]
    for path in folders:
        try:
            lines += ablation_section(path, out)
        except ReportError as e:
            lines += [f"Skipped `{path.as_posix()}`: {e}.", ""]
    return lines


def main(argv: list[str] | None = None) -> Path:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                        help="folder of paired-rollout JSONs and their .meta.json sidecars")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"),
                        help="markdown file to write")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    command = (f"python benchmarks/report.py --results {args.results.as_posix()} "
               f"--out {args.out.as_posix()}")
    atomic_write_text(args.out, render(results, args.results, args.out, command))
    print(f"wrote {args.out} ({len(results)} results)", file=sys.stderr)
    return args.out


if __name__ == "__main__":
    try:
        main()
    except ReportError as e:
        sys.exit(f"report.py: error: {e}")
