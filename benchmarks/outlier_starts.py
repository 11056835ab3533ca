"""The starts that decide a paired_rollout.py run's means: where a predictor's frame is far off.

    python benchmarks/outlier_starts.py RUN.json [--predictor NAME] [--above 2000] \\
        [--onset 30000] [--json OUT.json]

RUN.json is a JSON that benchmarks/paired_rollout.py wrote with --per-start. A whole-screen
event (DemonAttack's flash when the player is hit) costs tens of thousands of MSE for the frame
it comes in and for any predictor that misses it, against a typical start's tens, so a few
starts rule both means and their CIs. Per horizon h, with a start "far off" where its MSE is
above --above:

- `model_only`: far off for the model only (it drew an event that did not come);
- `both`: far off for both (an event neither foresaw);
- `copy_only`: far off for copy-last only (the model foresaw an event, or ended one that
  copy-last keeps);
- `onsets` / `onsets_foreseen`: the starts where copy-last's MSE is above --onset (the real
  frame h steps ahead is a new screen: an event begins within h steps of a calm last context
  frame), and how many of them the model has within --above;
- the model's and copy-last's mean and median MSE over the starts far off for neither.

The model is the run's one predictor other than copy-last, or --predictor. Output: one line
per horizon on stdout; with --json, the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neuralgym.data import atomic_write_json  # noqa: E402


def per_start(run: dict[str, Any], name: str, h: str) -> np.ndarray:
    """(starts,) MSE of predictor `name` at horizon `h`; a SystemExit where it is missing."""
    try:
        return np.asarray(run["predictors"][name]["horizons"][h]["mse"]["per_start"], float)
    except KeyError:
        raise SystemExit(f"{name!r} has no per-start MSE at h={h}: run paired_rollout.py with "
                         "--per-start") from None


def outliers(model: np.ndarray, copy: np.ndarray, above: float, onset: float
             ) -> dict[str, Any]:
    """The counts and calm-start statistics of one horizon (see the module docstring)."""
    far_m, far_c = model > above, copy > above
    calm = ~far_m & ~far_c
    onsets = copy > onset
    return {
        "starts": len(model), "model_only": int((far_m & ~far_c).sum()),
        "both": int((far_m & far_c).sum()), "copy_only": int((~far_m & far_c).sum()),
        "onsets": int(onsets.sum()), "onsets_foreseen": int((onsets & ~far_m).sum()),
        "calm": int(calm.sum()),
        "calm_mean": {"model": float(model[calm].mean()), "copy-last": float(copy[calm].mean())},
        "calm_median": {"model": float(np.median(model[calm])),
                        "copy-last": float(np.median(copy[calm]))},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="paired_rollout.py JSON written with --per-start")
    ap.add_argument("--predictor", default=None, help="the model (default: the one other than "
                    "copy-last)")
    ap.add_argument("--above", type=float, default=2000.0, help="a start's MSE above this is "
                    "far off")
    ap.add_argument("--onset", type=float, default=30000.0, help="copy-last's MSE above this "
                    "marks an event's onset")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)
    if not args.run.is_file():
        ap.error(f"{args.run} does not exist")
    run = json.loads(args.run.read_text())
    names = [n for n in run["predictors"] if n != "copy-last"]
    name = args.predictor or (names[0] if len(names) == 1 else None)
    if name not in names or "copy-last" not in run["predictors"]:
        ap.error(f"name the model with --predictor (one of {names}); the run needs copy-last too")
    result = {"run": str(args.run), "model": name, "above": args.above, "onset": args.onset,
              "horizons": {}}
    for h in map(str, run["horizons"]):
        r = outliers(per_start(run, name, h), per_start(run, "copy-last", h), args.above,
                     args.onset)
        result["horizons"][h] = r
        print(f"h={h}: {r['starts']} starts; far off (MSE > {args.above:g}) for the model only "
              f"{r['model_only']}, both {r['both']}, copy-last only {r['copy_only']}; onsets "
              f"{r['onsets']}, foreseen {r['onsets_foreseen']}; the other {r['calm']}: mean "
              f"{r['calm_mean']['model']:.1f} against {r['calm_mean']['copy-last']:.1f}, "
              f"median {r['calm_median']['model']:.1f} against "
              f"{r['calm_median']['copy-last']:.1f}")
    if args.json:
        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
