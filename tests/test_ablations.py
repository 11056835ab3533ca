"""training/ablations.sh end to end on the CPU with tiny settings (groups metadata and gphi on
the recorded Breakout fixture, a tiny VAE and its latent cache), its resume / deadline / dry-run
paths, and benchmarks/ablation_report.py on those results and on synthetic ones."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralgym.data import Dataset
from neuralgym.metrics import summarize_frame_metrics
from neuralgym.model_folder import ModelFolder
from neuralgym.models.vae import FrameVAE, VAEConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "training" / "ablations.sh"
REPORT = ROOT / "benchmarks" / "ablation_report.py"
ENV_ID = "NeuralBreakout-v0"
DEN_TINY = ("--context 2 --channels 8 16 --norm-groups 4 --heads 2 --token-dim 16 "
            "--layers-per-block 1 --warmup 2 --eval-windows 4 --eval-steps 1")
META_TINY = ("--window 4 --hidden 16 --layers 1 --latent-width 4 --latent-dim 8 "
             "--batch-size 8 --warmup 2 --eval-windows 16")
TINY_ENV = {
    "ABL_STEPS": "3", "ABL_BATCH": "4", "ABL_CKPT": "2", "ABL_DEVICE": "cpu",
    "ABL_ARGS": DEN_TINY, "ABL_META_STEPS": "3", "ABL_META_ARGS": META_TINY,
    "META_STEPS": "3", "META_ARGS": f"{META_TINY} --device cpu",
    "ABL_HORIZONS": "1 2 4", "ABL_EPISODES": "2", "ABL_STARTS": "2", "ABL_BENCH_BATCH": "4",
    "ABL_SPLIT": "all",
}
VARIANTS = ("meta-T1-future-embedding", "nometa-T1-future-embedding")


@pytest.fixture(scope="module")
def ablations(run_script):
    """`ablations(*args, work=, out=, **extra_env)`: training/ablations.sh with the tiny
    settings."""

    def ablations(*args: str, work: Path, out: Path, **extra: str) -> subprocess.CompletedProcess:
        return run_script(SCRIPT, *args, timeout=600,
                          env={**TINY_ENV, **extra, "WORK": str(work), "OUT": str(out)})

    return ablations


@pytest.fixture(scope="module")
def report(run_script):
    """`report(results, out)`: benchmarks/ablation_report.py."""

    def report(results: Path, out: Path) -> subprocess.CompletedProcess:
        return run_script(REPORT, "--results", results, "--out", out, timeout=120)

    return report


@pytest.fixture(scope="module")
def work(breakout_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory,
         run_script) -> Path:
    """$WORK with what `gpu_pipeline.sh ENV setup record vae latents` leaves: data, a model
    folder with a (tiny, untrained) VAE and its latent cache; no g_phi yet."""
    work = tmp_path_factory.mktemp("ablations") / "work"
    root = work / ENV_ID
    root.mkdir(parents=True)
    (root / "data").symlink_to(breakout_dataset.root)
    torch.manual_seed(0)
    vae = FrameVAE(VAEConfig(210, 160, block_out_channels=(2, 4, 4), latent_channels=4,
                             norm_num_groups=2)).eval()
    vae.fit_latent_normalization(
        breakout_dataset.load(breakout_dataset.split("train")[0]).frames[:16])
    folder = ModelFolder(root / "model")
    folder.save_component("vae", vae, vae.config)
    folder.update(env_id=ENV_ID)
    r = run_script("training/prepare_latents.py", "--data", root / "data", "--model",
                   root / "model", "--out", root / "latents", "--batch-size", "50", "--device",
                   "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def first_run(work: Path, ablations) -> tuple[subprocess.CompletedProcess, Path]:
    out = work.parent / "out1"
    return ablations(ENV_ID, "metadata", "gphi", work=work, out=out), out


def test_usage_errors(tmp_path: Path, ablations) -> None:
    r = ablations(ENV_ID, work=tmp_path, out=tmp_path / "out")
    assert r.returncode == 2 and "usage" in r.stderr
    r = ablations(ENV_ID, "speed", work=tmp_path, out=tmp_path / "out")
    assert r.returncode == 2 and "unknown group speed" in r.stderr


def test_missing_cache_is_a_clear_error(tmp_path: Path, ablations) -> None:
    r = ablations(ENV_ID, "metadata", work=tmp_path, out=tmp_path / "out")
    assert r.returncode == 1
    assert "no latent cache" in r.stderr and "gpu_pipeline.sh" in r.stderr


def test_metadata_and_gphi_groups(first_run, work: Path) -> None:
    r, out = first_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    root = work / ENV_ID
    abl = root / "ablations"
    # the main model got the shared g_phi the conditioned variant needs
    main = ModelFolder(root / "model")
    assert main.has("metadata") and (root / "model" / "metadata_eval.json").exists()
    for v in VARIANTS:
        folder = ModelFolder(abl / v)
        assert set(folder.read_config()["components"]) == {"vae", "metadata", "denoiser"}
        for shared in ("vae", "metadata"):  # shared, byte for byte
            assert ((abl / v / f"{shared}.safetensors").read_bytes()
                    == (root / "model" / f"{shared}.safetensors").read_bytes())
        e = json.loads((abl / v / "denoiser_eval.json").read_text())
        assert e["steps"] == 3 and e["frames_per_call"] == 1 and e["context"] == 2
        assert e["metadata"] == v.startswith("meta-") and e["action_encoding"] == "embedding"
    # $OUT: two files, the bundle and the report
    assert sorted(p.name for p in out.iterdir()) == ["ABLATIONS.md", "ablations.tgz"]
    with tarfile.open(out / "ablations.tgz") as tar:
        names = set(tar.getnames())
    assert {"results/metadata.json", "results/settings.json",
            *(f"results/denoiser/{v}.json" for v in VARIANTS),
            *(f"results/gphi/metadata_{k}_eval.json" for k in ("gru", "lstm", "transformer"))
            } <= names
    group = json.loads((abl / "results" / "metadata.json").read_text())
    assert group["horizons"] == [1, 2, 4]
    assert [Path(k).name for k in group["predictors"]] == ["copy-last", *VARIANTS]
    for pred in group["predictors"].values():  # each start's values kept for paired CIs
        assert len(pred["horizons"]["1"]["mse"]["per_start"]) == group["n_starts"]
    for k in ("gru", "lstm", "transformer"):
        e = json.loads((abl / "gphi" / f"metadata_{k}_eval.json").read_text())
        assert e["kind"] == k and e["steps"] == 3 and e["component"] == f"metadata_{k}"
    settings = json.loads((abl / "results" / "settings.json").read_text())
    assert settings["abl_steps"] == "3" and settings["env_id"] == ENV_ID
    md = (out / "ABLATIONS.md").read_text()
    assert "## (a) Metadata-conditioned vs metadata-ignorant denoiser" in md
    assert "| conditioned − ignorant | 1 |" in md and "paired bootstrap" in md
    assert "every variant trained 3 steps" in md
    assert "| steps | 3 | 3 | 3 |" in md and "copy-previous" in md
    assert "Not run" in md and "frames.json" in md  # groups b and c were not asked for


def test_report_reads_the_bundle_and_the_folder(first_run, work: Path, tmp_path: Path,
                                                report) -> None:
    r, out = first_run
    assert r.returncode == 0
    a = report(out / "ablations.tgz", tmp_path / "a.md")
    assert a.returncode == 0, a.stderr
    b = report(work / ENV_ID / "ablations" / "results", tmp_path / "b.md")
    assert b.returncode == 0, b.stderr
    body = [t.read_text().split("\n", 3)[3] for t in (tmp_path / "a.md", tmp_path / "b.md")]
    assert body[0] == body[1]  # the same numbers (the command line differs)
    again = report(out / "ablations.tgz", tmp_path / "a2.md")
    assert again.returncode == 0
    assert (tmp_path / "a2.md").read_text().split("\n", 3)[3] == body[0]  # deterministic


def test_rerun_skips_what_is_done_and_deadline_exits_75(first_run, work: Path,
                                                       ablations) -> None:
    r, _ = first_run
    assert r.returncode == 0
    results = work / ENV_ID / "ablations" / "results"
    before = (results / "metadata.json").stat().st_mtime_ns
    r = ablations(ENV_ID, "metadata", "gphi", work=work, out=work.parent / "out2")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert r.stdout.count("trained (3 steps)") == 5 and "up to date" in r.stdout
    assert (results / "metadata.json").stat().st_mtime_ns == before
    # a larger budget with no time left: nothing starts, exit 75 (run again), results bundled
    out3 = work.parent / "out3"
    r = ablations(ENV_ID, "metadata", work=work, out=out3, ABL_STEPS="5", ABL_DEADLINE="1")
    assert r.returncode == 75, (r.stdout + r.stderr)[-3000:]
    assert "past the deadline" in r.stdout and "run the same command again" in r.stdout
    assert (out3 / "ablations.tgz").exists()
    assert (results / "metadata.json").stat().st_mtime_ns == before


def test_frames_and_actions_dry_run_then_run(first_run, work: Path, ablations) -> None:
    r, _ = first_run
    assert r.returncode == 0
    abl = work / ENV_ID / "ablations"
    r = ablations("--dry-run", ENV_ID, "frames", "actions", work=work, out=work.parent / "o4")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    out = r.stdout
    # the shared T = 1, future, embedding, no-metadata variant was trained by group metadata
    assert "variant nometa-T1-future-embedding: trained (3 steps)" in out
    for v, flags in (
        ("nometa-T1-pastfuture-embedding", "--no-metadata --frames-per-call 1 "
                                           "--action-context past+future --action-encoding "
                                           "embedding"),
        ("nometa-T2-future-embedding", "--frames-per-call 2 --action-context future"),
        ("nometa-T4-pastfuture-embedding", "--frames-per-call 4 --action-context past+future"),
        ("nometa-T4-future-onehot", "--action-encoding onehot"),
    ):
        line = next(x for x in out.splitlines() if "train_denoiser.py" in x and f"/{v} " in x)
        assert flags in line and "--steps 3 --batch-size 4 --seed 0" in line
        assert line.rstrip().endswith("--eval-steps 1")  # ABL_ARGS last
    paired = [x for x in out.splitlines() if "paired_rollout.py --per-start" in x]
    assert len(paired) == 2 and "--horizons 1 2 3 4" in paired[0]
    assert paired[0].count("embedding") == 6 and "onehot" in paired[1]
    assert not (abl / "nometa-T2-future-embedding").exists()  # nothing was done
    # and for real, with T = 2 only (T = 1 and 4 work the same way): 3 new variants
    out = work.parent / "out5"
    # two trainings at once (ABL_JOBS): each variant is one job, then the rollouts
    r = ablations(ENV_ID, "frames", "actions", work=work, out=out, ABL_FRAMES="2", ABL_JOBS="2")
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    assert "training 3 jobs, 2 at a time" in r.stdout  # T=2's three variants
    assert "variant nometa-T2-future-embedding: trained (3 steps)" in r.stdout
    assert r.stdout.count("variant nometa-T2-future-embedding: training") == 1  # once, shared
    for v, T, ctx, enc in (("nometa-T2-future-embedding", 2, "future", "embedding"),
                           ("nometa-T2-pastfuture-embedding", 2, "past+future", "embedding"),
                           ("nometa-T2-future-onehot", 2, "future", "onehot")):
        e = json.loads((abl / v / "denoiser_eval.json").read_text())
        assert (e["frames_per_call"], e["action_context"], e["action_encoding"]) == (T, ctx, enc)
        assert not e["metadata"]
    for g in ("frames", "actions"):
        group = json.loads((abl / "results" / f"{g}.json").read_text())
        assert group["horizons"] == [1, 2, 4]
        assert len(group["predictors"]) == 3
    md = (out / "ABLATIONS.md").read_text()
    assert "| past+future T=2 − future T=2 | 1 |" in md
    assert "| one-hot T=2 − embedding T=2 | 4 |" in md
    assert "| 2 | past+future actions |" in md and "13.2152 | 36.6384 | 0.0376 |" in md
    assert "| 2 | onehot |" in md and "13.8342 | 36.7308 | 0.0190 |" in md


# -- the report on synthetic results --------------------------------------------------------


def summary(per_start: np.ndarray, keep: bool) -> dict:
    s = summarize_frame_metrics({"mse": per_start, "psnr": 10 * np.log10(255**2 / per_start),
                                 "ssim": np.ones_like(per_start), "lpips": None},
                                lpips_note="LPIPS not measured: the AlexNet weights are missing.")
    if keep:
        s["mse"]["per_start"] = per_start.tolist()
    return s


def synthetic(folder: Path, keep: bool) -> None:
    """A frames group where past+future is worse than future by 1.0 +- 0.1 at every start,
    while the starts' errors spread widely (so only a paired CI sees the difference)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(5, 40, size=40)
    preds = {"copy-last": base + 10}
    for T in (1, 2):
        preds[f"/w/nometa-T{T}-future-embedding"] = base
        preds[f"/w/nometa-T{T}-pastfuture-embedding"] = base + 1 + rng.normal(0, 0.1, 40)
    data = {"env_id": ENV_ID, "split": "test", "n_starts": 40, "n_episodes": 5, "context": 4,
            "horizons": [1, 2, 4], "seed": 0, "replay_mismatches": 0,
            "machine": {"device": "cuda", "gpu": "H100"}, "torch": "2", "predictors": {
                k: {"name": k, "context": 4, "horizons": {
                    str(h): summary(v * (1 + 0.1 * h), keep) for h in (1, 2, 4)}}
                for k, v in preds.items()}}
    folder.mkdir(parents=True)
    (folder / "frames.json").write_text(json.dumps(data))
    (folder / "denoiser").mkdir()
    for k in preds:
        if k != "copy-last":
            (folder / "denoiser" / f"{Path(k).name}.json").write_text(json.dumps(
                {"steps": 100, "mse": {"1": 0.1}, "copy_last_mse": 0.2, "test_windows": 8,
                 "parameters": 1000}))


def test_report_paired_vs_summary_cis_and_table3(tmp_path: Path, report) -> None:
    for keep in (True, False):
        synthetic(tmp_path / f"r{keep}", keep)
        r = report(tmp_path / f"r{keep}", tmp_path / f"{keep}.md")
        assert r.returncode == 0, r.stderr
    paired, unpaired = (tmp_path / "True.md").read_text(), (tmp_path / "False.md").read_text()
    row = "| past+future T=1 − future T=1 | 1 |"
    assert "**future T=1** better" in next(x for x in paired.splitlines() if row in x)
    line = next(x for x in unpaired.splitlines() if row in x)
    assert "no clear difference" in line and "†" in line
    assert "normal approximation" in unpaired and "paired bootstrap" in paired
    # Li et al.'s Table 3 beside the first call's frames (T = 2: mean over h = 1, 2)
    assert "| 1 | future actions |" in paired and "13.1859 | 36.9485 | 0.0132 |" in paired
    assert "13.2152 | 36.6384 | 0.0376 |" in paired  # T = 2, past + future
    assert "T frames per call − one frame per call" in paired
    assert "Not measured: LPIPS not measured: the AlexNet weights are missing." in paired
    for section in ("(a)", "(c)", "(d)"):
        assert f"## {section}" in paired
    assert paired.count("Not run") == 3


def test_report_errors(tmp_path: Path, report) -> None:
    r = report(tmp_path / "nope", tmp_path / "x.md")
    assert r.returncode != 0 and "neither a folder nor a .tgz" in r.stderr
    (tmp_path / "empty").mkdir()
    r = report(tmp_path / "empty", tmp_path / "x.md")
    assert r.returncode != 0 and "no JSON results" in r.stderr
