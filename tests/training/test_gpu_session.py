"""training/gpu_session.sh: pipeline stage groups run in the background (one beside the
others, then waited for), polled, and their exports and logs copied out; a failing group stops
the run and says so."""

from __future__ import annotations

import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "gpu_session.sh"
ENV_ID = "NeuralBreakout-v0"
TINY = {"DEVICE": "cpu", "START": "none", "SEED": "1", "WORKERS": "1", "LIMIT": "300",
        "VAE_ARGS": "--block-out-channels 4 8 8 --latent-channels 4 --norm-num-groups 2 "
                    "--eval-frames 8 --norm-frames 16"}


def test_groups_run_in_the_background_and_are_polled(tmp_path: Path, run_script) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    env = {**TINY, "WORK": str(work), "OUT": str(out)}
    started = run_script(SCRIPT, "start", ENV_ID, "RECORD_STEPS=120 record", "&VAE_STEPS=1 vae",
                         "wait", "latents export", env=env, check=True)
    assert "started" in started.stdout
    polled = run_script(SCRIPT, "poll", ENV_ID, "600", "--copy", env=env, timeout=700,
                        check=True)
    assert "session: done" in polled.stdout, polled.stdout[-3000:]
    logs = work / ENV_ID / "logs"
    assert (logs / "DONE").exists() and not (logs / "FAILED").exists()
    assert (logs / "group2.log").read_text().rstrip().endswith("[done]")  # the background vae
    assert (work / ENV_ID / "latents").is_dir()  # the group after "wait" saw the vae
    assert {"breakout-model.tgz", "breakout-results.tgz"} <= {p.name for p in out.iterdir()}
    with tarfile.open(out / "logs.tgz") as tar:
        assert {"session.log", "group2.log"} <= {Path(n).name for n in tar.getnames()}


def test_a_failing_group_stops_the_run(tmp_path: Path, run_script) -> None:
    env = {**TINY, "WORK": str(tmp_path / "work")}
    run_script(SCRIPT, "start", ENV_ID, "no-such-stage", "record", env=env, check=True)
    polled = run_script(SCRIPT, "poll", ENV_ID, "120", env=env, timeout=200, check=True)
    assert "session: failed" in polled.stdout
    assert "unknown stage no-such-stage" in polled.stdout
    assert not (tmp_path / "work" / ENV_ID / "data").exists()  # "record" never ran
