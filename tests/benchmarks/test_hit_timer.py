"""benchmarks/hit_timer.py on a short DemonAttack recording (random play, real ALE): the hits it
counts are the steps where hit_timer leaves 0, each with its flash on the recorded frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "hit_timer.py"


def test_counts_the_hits_and_their_flashes(tmp_path: Path, dataset_recorder,
                                           run_script) -> None:
    data = tmp_path / "da"
    dataset = dataset_recorder(data, "NeuralDemonAttack-v0", 1, 1500, state_every=500)
    timer = dataset.load(dataset.split("all")[0]).metadata[:, dataset.metadata_names.index(
        "hit_timer")]
    jumps = np.flatnonzero((timer[1:] > 0) & (timer[:-1] == 0)) + 1
    told = int(np.sum(timer[jumps] == 63))
    r = run_script(SCRIPT, "--data", data, "--json", tmp_path / "hits.json")
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "hits.json").read_text())
    assert result["hits"] >= 1  # random play is hit within 1,500 steps
    assert result["hits"] in (len(jumps), len(jumps) - 1)  # a hit on the last step is cut
    assert result["told_a_step_ahead"] <= told
    assert result["flash_where_the_timer_says"] == result["hits"]
    lo, hi = result["share_ci95"]
    assert 0 <= lo <= result["share"] <= hi <= 1
    assert f"{result['hits']} hits in 1 episodes" in r.stdout
    # the shots: a hit counts where bullet_dx0 or bullet_dx1 was within 6 columns the step before
    meta = dataset.load(dataset.split("all")[0]).metadata
    near = (np.abs(meta[:, [dataset.metadata_names.index(f"bullet_dx{b}") for b in (0, 1)]])
            <= 6).any(1)
    shots = result["shots"]
    counted = jumps[jumps < len(timer) - 1] if result["hits"] < len(jumps) else jumps
    assert shots["hits_with_a_shot_near"] == int(near[counted - 1].sum())
    assert shots["hits_with_a_shot_near"] <= shots["hits_told_by_the_timer_or_a_shot"] \
        <= result["hits"]
    calm = np.flatnonzero((timer[:-1] == 0) & near[:-1])
    assert shots["calm_steps_with_a_shot_near"] == len(calm) > 0
    assert shots["followed_by_a_hit"] == int((timer[calm + 1] > 0).sum())
    assert "a shot within 6 columns" in r.stdout


def test_a_recording_without_the_timer_is_refused(breakout_dataset, run_script) -> None:
    r = run_script(SCRIPT, "--data", breakout_dataset.root)
    assert r.returncode != 0 and "no hit_timer" in r.stderr
