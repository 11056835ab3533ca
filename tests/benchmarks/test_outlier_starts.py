"""benchmarks/outlier_starts.py on a synthetic paired_rollout.py JSON with per-start values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def outlier(load_script):
    return load_script("benchmarks/outlier_starts.py", "outlier_starts")


def run_json(path: Path, model: list[float], copy: list[float], per_start: bool = True) -> Path:
    def pred(values: list[float]) -> dict:
        mse = {"mean": sum(values) / len(values)}
        if per_start:
            mse["per_start"] = values
        return {"horizons": {"1": {"mse": mse}}}

    path.write_text(json.dumps({"horizons": [1], "predictors": {
        "copy-last": pred(copy), "runs/wm": pred(model)}}))
    return path


def test_counts_each_kind_of_start(outlier, tmp_path: Path) -> None:
    # starts: calm, calm, a drawn event that did not come, an event neither foresaw, a fading
    # event the model ended, an onset the model foresaw
    model = [70.0, 80.0, 40000.0, 45000.0, 90.0, 300.0]
    copy = [130.0, 150.0, 140.0, 48000.0, 9000.0, 47000.0]
    out = tmp_path / "out.json"
    result = outlier.main([str(run_json(tmp_path / "run.json", model, copy)),
                           "--json", str(out)])
    assert json.loads(out.read_text()) == result and result["model"] == "runs/wm"
    r = result["horizons"]["1"]
    assert (r["model_only"], r["both"], r["copy_only"]) == (1, 1, 2)
    assert (r["onsets"], r["onsets_foreseen"], r["calm"]) == (2, 1, 2)
    assert r["calm_mean"] == {"model": 75.0, "copy-last": 140.0}
    assert r["calm_median"] == {"model": 75.0, "copy-last": 140.0}
    # a higher bar: the fading event (9,000) is no longer far off for copy-last
    r = outlier.main([str(tmp_path / "run.json"), "--above", "10000"])["horizons"]["1"]
    assert (r["copy_only"], r["calm"]) == (1, 3)


def test_errors(outlier, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--per-start"):
        outlier.main([str(run_json(tmp_path / "no.json", [1.0], [2.0], per_start=False))])
    with pytest.raises(SystemExit):
        outlier.main([str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit):
        outlier.main([str(run_json(tmp_path / "r.json", [1.0], [2.0])), "--predictor", "other"])
