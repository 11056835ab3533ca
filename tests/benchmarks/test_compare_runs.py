"""benchmarks/compare_runs.py on synthetic paired_rollout.py JSONs (no rollouts run)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuralgym.metrics import summarize

SCRIPT = "benchmarks/compare_runs.py"
N_STARTS = 20
HORIZONS = [1, 4]
STARTS = {"ep-0": [10, 20, 30, 40, 50], "ep-1": [10, 20, 30, 40, 50],
          "ep-2": [5, 15, 25, 35, 45], "ep-3": [5, 15, 25, 35, 45]}  # 20 starts


def horizon(mse: np.ndarray, per_start: bool = True) -> dict[str, Any]:
    """One horizon's summaries as paired_rollout.py writes them; mse shape (N_STARTS,)."""
    out = {"mse": summarize(mse), "psnr_mean_per_frame": summarize(40.0 - mse),
           "psnr_of_mean_mse": {"mean": 40.0, "ci95": [39.0, 41.0], "n": N_STARTS},
           "ssim": summarize(1.0 - mse / 100), "lpips": {"mean": None, "note": "not measured"}}
    if per_start:
        out["mse"]["per_start"] = mse.tolist()
        out["psnr_mean_per_frame"]["per_start"] = (40.0 - mse).tolist()
        out["ssim"]["per_start"] = (1.0 - mse / 100).tolist()
    return out


def run_json(mse: dict[int, np.ndarray], bf16: bool, name: str = "default",
             per_start: bool = True) -> dict[str, Any]:
    """A paired_rollout.py-style JSON with copy-last and one model `name`; mse[h]: its
    per-start MSE at horizon h, shape (N_STARTS,)."""
    copy_last = {h: np.full(N_STARTS, 50.0 + h) for h in HORIZONS}
    return {
        "env_id": "NeuralBreakout-v0", "data": "/data", "split": "all", "n_episodes": 4,
        "n_starts": N_STARTS, "starts": STARTS, "horizons": HORIZONS, "context": 4,
        "seed": 0, "predictors": {
            "copy-last": {"name": "copy-last", "context": 1,
                          "horizons": {str(h): horizon(copy_last[h]) for h in HORIZONS}},
            name: {"name": name, "context": 4, "folder": "/models/breakout",
                   "denoising_steps": 3, "decoder": "fast", "bf16_weights": bf16,
                   "horizons": {str(h): horizon(mse[h], per_start) for h in HORIZONS}},
        }}


def base_mse() -> dict[int, np.ndarray]:
    rng = np.random.default_rng(1)
    return {1: rng.uniform(2.0, 6.0, N_STARTS), 4: rng.uniform(5.0, 15.0, N_STARTS)}


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, dict[int, np.ndarray]]:
    """A.json, B.json (B = A + 1 per start at h = 1, B = A at h = 4) and A's MSE."""
    a = base_mse()
    b = {1: a[1] + 1.0, 4: a[4].copy()}
    path_a, path_b = tmp_path / "a.json", tmp_path / "b.json"
    path_a.write_text(json.dumps(run_json(a, bf16=False)))
    path_b.write_text(json.dumps(run_json(b, bf16=True)))
    return path_a, path_b, a


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The markdown table's data rows by h, cells stripped."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[cells[0]] = cells
    return rows


def test_table_and_json(runs, tmp_path: Path, run_script):
    path_a, path_b, a = runs
    out = tmp_path / "out" / "cmp.json"
    proc = run_script(SCRIPT, path_a, path_b, "--json", out, check=True)
    lines = proc.stdout.splitlines()
    heading = lines[0]
    assert str(path_a) in heading and str(path_b) in heading and "20 starts" in heading
    assert "bf16_weights False" in heading and "bf16_weights True" in heading
    assert "decoder fast" in heading and "denoising_steps 3" in heading
    assert lines[1] == ("| h | A MSE [95% CI] | B MSE [95% CI] | B - A [95% CI] | (B - A) / A "
                        "| reading |")
    rows = table_rows(proc.stdout)
    assert list(rows) == ["1", "4"]
    mean_a1 = float(np.mean(a[1]))
    assert rows["1"][1].startswith(f"{mean_a1:.2f} [")
    assert rows["1"][2].startswith(f"{mean_a1 + 1:.2f} [")
    assert rows["1"][3] == "+1.000 [+1.000, +1.000]"
    assert rows["1"][4] == f"{100 / mean_a1:+.1f}%"
    assert rows["1"][5] == "B higher"
    assert rows["4"][3] == "+0.000 [+0.000, +0.000]"
    assert rows["4"][4] == "+0.0%"
    assert rows["4"][5] == "no clear difference (CI includes 0)"

    report = json.loads(out.read_text())
    assert report["n_starts"] == N_STARTS and report["metric"] == "mse"
    assert report["a"] == {"file": str(path_a), "predictor": "default", "bf16_weights": False,
                           "decoder": "fast", "denoising_steps": 3}
    assert report["b"]["bf16_weights"] is True
    h1, h4 = report["horizons"]["1"], report["horizons"]["4"]
    assert h1["a"]["mean"] == pytest.approx(mean_a1)
    assert h1["b"]["mean"] == pytest.approx(mean_a1 + 1.0)
    assert h1["a"]["n"] == h1["diff"]["n"] == N_STARTS
    assert h1["diff"]["mean"] == pytest.approx(1.0)
    assert h1["diff"]["ci95"] == pytest.approx([1.0, 1.0])
    assert h1["relative_diff"] == pytest.approx(1.0 / mean_a1)
    assert h1["reading"] == "B higher"
    assert h4["diff"]["mean"] == 0.0 and h4["diff"]["ci95"] == [0.0, 0.0]
    assert h4["reading"] == "no clear difference (CI includes 0)"


def test_noisy_difference_and_lower(load_script):
    """A CI that straddles 0 reads as no clear difference; one below 0 as B lower."""
    compare_runs = load_script(SCRIPT, "compare_runs_script")
    rng = np.random.default_rng(0)
    a = rng.uniform(5.0, 10.0, 200)
    noisy = compare_runs.compare(a, a + rng.normal(0.0, 1.0, 200))
    lo, hi = noisy["diff"]["ci95"]
    assert lo < 0 < hi and noisy["reading"] == "no clear difference (CI includes 0)"
    lower = compare_runs.compare(a, a - 0.5 + rng.normal(0.0, 0.1, 200))
    assert lower["diff"]["ci95"][1] < 0 and lower["reading"] == "B lower"
    assert lower["relative_diff"] == pytest.approx((lower["b"]["mean"] - np.mean(a))
                                                   / np.mean(a))


def test_other_predictor_names_and_metric(tmp_path: Path, run_script):
    a = base_mse()
    path_a, path_b = tmp_path / "a.json", tmp_path / "b.json"
    path_a.write_text(json.dumps(run_json(a, bf16=False, name="runs/wm-a")))
    path_b.write_text(json.dumps(run_json({h: v + 2.0 for h, v in a.items()}, bf16=False,
                                          name="runs/wm-b")))
    proc = run_script(SCRIPT, path_a, path_b, "--predictor", "runs/wm-a", "--predictor-b",
                      "runs/wm-b", "--metric", "psnr_mean_per_frame", check=True)
    rows = table_rows(proc.stdout)
    assert rows["1"][3] == "-2.000 [-2.000, -2.000]" and rows["1"][5] == "B lower"
    assert "A PSNR per frame (dB) [95% CI]" in proc.stdout


def write_pair(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> tuple[Path, Path]:
    path_a, path_b = tmp_path / "a.json", tmp_path / "b.json"
    path_a.write_text(json.dumps(a))
    path_b.write_text(json.dumps(b))
    return path_a, path_b


@pytest.mark.parametrize("case", ["starts", "horizons", "seed", "env_id", "missing-predictor",
                                  "missing-per-start", "missing-file", "not-paired-rollout",
                                  "lpips-not-measured"])
def test_bad_inputs_fail_clearly(case: str, tmp_path: Path, run_script):
    a = base_mse()
    run_a = run_json(a, bf16=False)
    run_b = run_json(a, bf16=True, per_start=case != "missing-per-start")
    extra: list[str] = []
    expect: tuple[str, ...]
    same = ("not the same starts", "compare only runs made on the same data with the same "
            "settings")
    if case == "starts":
        run_b["starts"] = copy.deepcopy(STARTS)
        run_b["starts"]["ep-3"][-1] = 46
        expect = (*same, "differ in starts")
    elif case == "horizons":
        run_b["horizons"] = [1, 2]
        expect = (*same, "differ in horizons")
    elif case == "seed":
        run_b["seed"] = 1
        expect = (*same, "differ in seed")
    elif case == "env_id":
        run_b["env_id"] = "NeuralPong-v0"
        expect = (*same, "differ in env_id")
    elif case == "missing-predictor":
        extra = ["--predictor-b", "runs/wm"]
        expect = ("b.json has no predictor 'runs/wm' (it has: 'copy-last', 'default')",
                  "--predictor-b NAME")
    elif case == "missing-per-start":
        expect = ("b.json: predictor 'default' at h=1 has no per-start mse values",
                  "rerun paired_rollout.py with --per-start")
    elif case == "not-paired-rollout":
        run_b = {"env_id": "NeuralBreakout-v0", "mean_return": 3.0}
        expect = ("b.json is not a paired_rollout.py result (missing n_starts, starts",)
    elif case == "lpips-not-measured":
        extra = ["--metric", "lpips"]
        expect = ("lpips was not measured (not measured); pick another --metric",)
    else:
        expect = ("nothing.json does not exist",)
    path_a, path_b = write_pair(tmp_path, run_a, run_b)
    if case == "missing-file":
        path_b = tmp_path / "nothing.json"
    out = tmp_path / "cmp.json"
    proc = run_script(SCRIPT, path_a, path_b, "--json", out, *extra)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("compare_runs.py: error: "), proc.stderr
    for text in expect:
        assert text in proc.stderr, proc.stderr
    assert not out.exists()
