"""training/gpu_pipeline.sh end to end on the CPU with tiny settings: record (sticky-random
and random), VAE, latents, g_phi, denoiser (stopped by DEN_SECONDS, then resumed), fast
decoder, start contexts, the paired benchmark, PPO on the real game and in the dream scored
in the real game, and the export archives; the exported folder loads as a world model."""

from __future__ import annotations

import json
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuralgym.data import Dataset
from neuralgym.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "gpu_pipeline.sh"
ENV_ID = "NeuralBreakout-v0"
TINY = {
    "DEVICE": "cpu", "START": "none", "RECORD_STEPS": "500", "SEED": "3", "WORKERS": "1",
    "VAE_STEPS": "2", "VAE_ARGS": "--block-out-channels 4 8 8 --latent-channels 4 "
                                  "--norm-num-groups 2 --eval-frames 8 --norm-frames 16",
    "META_STEPS": "2", "META_ARGS": "--window 4 --hidden 16 --layers 1 --latent-width 4 "
                                    "--latent-dim 8 --batch-size 8 --warmup 1 --eval-windows 8",
    "DEN_STEPS": "4", "DEN_ARGS": "--context 2 --channels 8 16 --norm-groups 4 --heads 2 "
                                  "--token-dim 16 --layers-per-block 1 --warmup 1 "
                                  "--eval-windows 4 --eval-steps 1 --batch-size 4",
    "DEC_STEPS": "2", "DEC_ARGS": "--channels 2 2 4 --norm-num-groups 2 --batch-size 2 "
                                  "--eval-frames 4",
    "CONTEXTS": "2", "BENCH_EPISODES": "1", "BENCH_STARTS": "1", "BENCH_HORIZONS": "1 2",
    "NOTE": "tiny CPU test", "LIMIT": "300", "RANDOM_STEPS": "150",
    "PPO_STEPS": "64", "PPO_ENVS": "2", "PPO_ARGS": "--n-steps 32 --batch-size 32",
    "PPO_DREAM_ENVS": "2",
    "PPO_DREAM_ARGS": "--n-steps 32 --batch-size 32 --max-episode-steps 10 --denoising-steps 1",
    "PPO_RECORD_STEPS": "60", "EVAL_EPISODES": "2", "EVAL_ARGS": "--max-steps-per-episode 40",
}


def archive(out: Path, name: str, tmp: Path) -> Path:
    """The export `name` from `out`: whole, or joined from its 15 MiB .partN pieces."""
    parts = sorted(out.glob(f"{name}.part*"))
    assert (out / name).exists() != bool(parts), name
    if not parts:
        return out / name
    assert all(p.stat().st_size <= 15 * 2**20 for p in parts)
    (tmp / name).write_bytes(b"".join(p.read_bytes() for p in parts))
    return tmp / name


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, run_script) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("pipeline")
    work, out = base / "work", base / "out"

    def pipeline(*stages: str, **extra: str):
        return run_script(SCRIPT, ENV_ID, *stages, timeout=900,
                          env={**TINY, **extra, "WORK": str(work), "OUT": str(out)})

    first = pipeline("record", "vae", "latents", "metadata", "denoiser", DEN_SECONDS="0.001")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "stopping at step 1 of 4" in first.stdout, first.stdout[-3000:]
    second = pipeline("denoiser", "decoder", "contexts", "bench", "ppo-real", "record-ppo",
                      "ppo-dream", "ppo-eval", "export")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return work / ENV_ID, out, first.stdout + second.stdout


def test_denoiser_resumes_after_its_time_limit(run: tuple[Path, Path, str]) -> None:
    _, _, log = run
    assert "resumed at step 1" in log
    assert "trained 3 steps" in log


def test_export_writes_a_loadable_model_and_the_results(run: tuple[Path, Path, str],
                                                        tmp_path: Path) -> None:
    _, out, _ = run
    assert {p.name.split(".part")[0] for p in out.iterdir()} == {"breakout-model.tgz",
                                                                 "breakout-results.tgz"}
    with tarfile.open(archive(out, "breakout-model.tgz", tmp_path)) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "breakout"
    assert {"config.json", "vae.safetensors", "metadata.safetensors", "denoiser.safetensors",
            "decoder.safetensors", "start_contexts.safetensors"} <= {
                p.name for p in folder.iterdir()}
    model = WorldModel.from_pretrained(folder)
    assert model.decoder is not model.vae  # the fast decoder
    assert model.denoiser.config.context == 2
    assert "tiny CPU test" in (folder / "config.json").read_text()
    with tarfile.open(archive(out, "breakout-results.tgz", tmp_path)) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"paired.json", "paired.gif", "denoiser_eval.json", "vae_eval.json",
            "decoder_eval.json", "ppo-real.zip", "ppo-dream.zip"} <= names


def test_recorded_agents(run: tuple[Path, Path, str]) -> None:
    root, _, _ = run
    steps: dict[str, int] = {}
    data = Dataset(root / "data")
    for ref in data.split("all"):
        agent = ref.name.split("-s3-")[0]
        steps[agent] = steps.get(agent, 0) + len(data.load(ref))
    assert steps == {"sticky-random": 500, "random": 150, "ppo-real": 60}


def test_ppo_real_and_dream_scored_in_the_real_game(run: tuple[Path, Path, str],
                                                    tmp_path: Path) -> None:
    import json

    root, out, _ = run
    for policy in ("real", "dream", "random"):
        result = json.loads((root / "results" / f"ppo-{policy}.json").read_text())
        assert result["real_game"] and result["episodes"] == 2
    assert "real.zip and its learning curve" in (root / "ppo" / "real.log").read_text()
    with tarfile.open(archive(out, "breakout-results.tgz", tmp_path)) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"ppo-curves.png", "real.curve.csv", "dream.curve.csv"} <= names


def test_ppo_eval_scores_only_the_named_policies(run: tuple[Path, Path, str], tmp_path: Path,
                                                run_script) -> None:
    """PPO_EVAL_POLICIES: a lease that trained only on the real game scores that agent and
    random play and plots that one learning curve; a named policy without its model fails."""
    import json

    root = copy_run(run[0], tmp_path / "work")
    (root / "ppo").mkdir()
    for f in ("real.zip", "real.curve.csv"):
        shutil.copy(run[0] / "ppo" / f, root / "ppo" / f)
    env = {**TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
           "PPO_EVAL_POLICIES": "real random"}
    r = run_script(SCRIPT, ENV_ID, "ppo-eval", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = root / "results"
    assert sorted(p.name for p in results.iterdir()) == [
        "ppo-curves.png", "ppo-random.json", "ppo-real.json", "real.curve.csv"]
    assert json.loads((results / "ppo-real.json").read_text())["policy"].endswith("real.zip")
    env["PPO_EVAL_POLICIES"] = "dream"
    assert run_script(SCRIPT, ENV_ID, "ppo-eval", env=env).returncode != 0


def test_ppo_real_names_its_agent(run: tuple[Path, Path, str], tmp_path: Path,
                                  run_script) -> None:
    """PPO_REAL_NAME: real-game agents of several seeds share one work folder, each with its
    own model, learning curve, log and score."""
    import json

    root = copy_run(run[0], tmp_path / "work")
    env = {**TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
           "SEED": "7", "PPO_REAL_NAME": "real7", "PPO_EVAL_POLICIES": "real7"}
    r = run_script(SCRIPT, ENV_ID, "ppo-real", "ppo-eval", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in (root / "ppo").iterdir()) == [
        "real7.curve.csv", "real7.log", "real7.zip"]
    assert "real7.zip and its learning curve" in (root / "ppo" / "real7.log").read_text()
    score = json.loads((root / "results" / "ppo-real7.json").read_text())
    assert score["policy"].endswith("real7.zip") and score["real_game"]
    assert (root / "results" / "ppo-curves.png").exists()


def test_ppo_dream_names_its_agent_and_cuts_its_episodes(run: tuple[Path, Path, str],
                                                         tmp_path: Path, run_script) -> None:
    """PPO_DREAM_NAME: a second dream agent beside the first ($PPO/<name>.zip, its curve),
    which ppo-eval scores by that name; PPO_DREAM_EPISODE cuts its dream episodes (its curve's
    episodes end every 3 steps, where the TINY --max-episode-steps 10 would end them at 10)."""
    root = copy_run(run[0], tmp_path / "work")
    env = {**TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
           "PPO_DREAM_NAME": "short", "PPO_DREAM_EPISODE": "3", "PPO_EVAL_POLICIES": "short"}
    r = run_script(SCRIPT, ENV_ID, "ppo-dream", "ppo-eval", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (root / "ppo" / "short.zip").exists() and not (root / "ppo" / "dream.zip").exists()
    rows = (root / "ppo" / "short.curve.csv").read_text().split()[1:]  # step,return,n,s
    # 2 envs x 32 steps: 3-step episodes, each with its reset step, end 16 times; 10-step ones 5
    assert sum(int(r.split(",")[2]) for r in rows) >= 12
    result = json.loads((root / "results" / "ppo-short.json").read_text())
    assert result["real_game"] and result["policy"].endswith("short.zip")


def test_ppo_dream_trains_in_the_dream_it_is_given(tmp_path: Path, run_script) -> None:
    missing = tmp_path / "no-model-here"
    r = run_script(SCRIPT, ENV_ID, "ppo-dream", env={
        **TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
        "PPO_DREAM_MODEL": str(missing)})
    assert r.returncode != 0
    assert str(missing) in r.stdout + r.stderr


def test_stages_after_the_vae_start_from_the_committed_model(run: tuple[Path, Path, str],
                                                             tmp_path: Path, run_script) -> None:
    """Without the vae stage (the VAE kept as committed), the latents stage copies the
    committed model in first, and the fast decoder goes on from the committed one."""
    model, _, _ = run
    work = tmp_path / "work"
    r = run_script(SCRIPT, ENV_ID, "record", "latents", "decoder", timeout=600, env={
        **TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "START": str(model / "model"),
        "RECORD_STEPS": "120", "RANDOM_STEPS": "0", "DEC_STEPS": "3"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"starting from the committed model {model / 'model'}" in r.stdout
    assert (work / ENV_ID / "latents").is_dir()
    assert "fine-tuning the decoder in" in r.stdout + r.stderr
    assert (work / ENV_ID / "model" / "decoder.safetensors").exists()


def test_record_stage_records_the_scripted_player(tmp_path: Path, run_script) -> None:
    """SCRIPTED_STEPS of the game's scripted player beside the sticky-random play (Pong)."""
    work = tmp_path / "work"
    r = run_script(SCRIPT, "NeuralPong-v0", "record", timeout=300, env={
        **TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "RECORD_STEPS": "60",
        "RANDOM_STEPS": "0", "SCRIPTED_STEPS": "80"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = Dataset(work / "NeuralPong-v0" / "data")
    steps: dict[str, int] = {}
    for ref in data.split("all"):
        agent = ref.name.split("-s3-")[0]
        steps[agent] = steps.get(agent, 0) + len(data.load(ref))
    assert steps == {"sticky-random": 60, "scripted": 80}


def noframes_steps(data: Dataset) -> dict[str, int]:
    """Steps per player (SEED 3) of a record-noframes dataset, whose episodes have no frames."""
    steps: dict[str, int] = {}
    for ref in data.split("all"):
        assert not data.load(ref).has_frames
        agent = ref.name.split("-s3-")[0]
        steps[agent] = steps.get(agent, 0) + ref.length
    return steps


def test_record_noframes_and_a_g_phi_trained_on_it(tmp_path: Path, run_script) -> None:
    """record-noframes: each player's steps without frames in their own dataset, its cache of
    metadata only; META_NOFRAMES=1 trains a new g_phi on that cache (--no-latent-input)."""
    from neuralgym.latents import LatentCache

    work = tmp_path / "work"
    env = {**TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "NOFRAMES_SCRIPTED": "90",
           "NOFRAMES_RANDOM": "50", "META_NOFRAMES": "1",
           "META_ARGS": TINY["META_ARGS"] + " --no-latent-input --fresh"}
    r = run_script(SCRIPT, "NeuralPong-v0", "record-noframes", "metadata", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    root = work / "NeuralPong-v0"
    data = Dataset(root / "data-noframes")
    assert noframes_steps(data) == {"scripted": 90, "random": 50}
    assert not (root / "data").exists()  # the frames' dataset is not touched
    cache = LatentCache(root / "metadata-noframes")
    assert not cache.has_latents and len(cache.metadata) == 140 + len(data.episodes)
    model = json.loads((root / "model" / "config.json").read_text())
    assert model["components"]["metadata"]["latent_input"] is False


def test_record_noframes_records_the_real_trained_agent(run: tuple[Path, Path, str],
                                                       tmp_path: Path, run_script) -> None:
    """NOFRAMES_PPO: steps of ppo-real's agent ($PPO/real.zip) without frames, beside the
    other players' in record-noframes' dataset; without that agent, a clear error."""
    root, _, _ = run
    work = tmp_path / "work"
    (work / ENV_ID / "ppo").mkdir(parents=True)
    env = {**TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "NOFRAMES_PPO": "40",
           "NOFRAMES_RANDOM": "20"}
    missing = run_script(SCRIPT, ENV_ID, "record-noframes", timeout=600, env=env)
    assert missing.returncode != 0 and "train one with" in missing.stdout + missing.stderr
    shutil.copy(root / "ppo" / "real.zip", work / ENV_ID / "ppo" / "real.zip")
    r = run_script(SCRIPT, ENV_ID, "record-noframes", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = work / ENV_ID / "data-noframes"
    assert noframes_steps(Dataset(data)) == {"random": 20, "ppo-real": 40}
    # NOFRAMES_PPO_MODEL: another agent's play (the dream-trained one), added to the dataset
    env.update(NOFRAMES_RANDOM="0", NOFRAMES_PPO_MODEL=str(tmp_path / "none.zip"))
    missing = run_script(SCRIPT, ENV_ID, "record-noframes", timeout=600, env=env)
    assert missing.returncode != 0 and "none.zip" in missing.stdout + missing.stderr
    env["NOFRAMES_PPO_MODEL"] = str(root / "ppo" / "dream.zip")
    r = run_script(SCRIPT, ENV_ID, "record-noframes", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # a new run, not the first one resumed: episodes named by their model (ppo-dream-)
    assert noframes_steps(Dataset(data)) == {"random": 20, "ppo-real": 40, "ppo-dream": 40}


def test_ablations_stage_runs_the_ablations_on_this_games_cache(run: tuple[Path, Path, str],
                                                                 tmp_path: Path,
                                                                 run_script) -> None:
    """The ablations stage hands the game's $WORK to training/ablations.sh (not $WORK/ENV_ID
    twice) and its bundle lands in the pipeline's $OUT."""

    root, _, _ = run
    work = tmp_path / "work"
    shutil.copytree(root, work / ENV_ID, symlinks=True,
                    ignore=shutil.ignore_patterns("ppo", "results", "export"))
    out = tmp_path / "out"
    r = run_script(SCRIPT, ENV_ID, "ablations", timeout=600, env={
        **TINY, "WORK": str(work), "OUT": str(out), "ABL_GROUPS": "gphi",
        "ABL_META_STEPS": "2", "ABL_META_ARGS": TINY["META_ARGS"], "ABL_DEVICE": "cpu"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (out / "ablations.tgz").exists() and (out / "ABLATIONS.md").exists()
    for kind in ("gru", "lstm", "transformer"):
        assert (work / ENV_ID / "ablations" / "gphi" / f"metadata_{kind}_eval.json").exists()


def test_ppo_probe_sets_equal_steps(run: tuple[Path, Path, str], tmp_path: Path,
                                    run_script) -> None:
    """ppo-probe measures dream PPO's steps/s and writes PPO_STEPS=auto's count; without it,
    PPO_STEPS=auto is a clear error."""
    work = tmp_path / "work"  # a copy: the module's pipeline run stays as the others see it
    root = work / ENV_ID
    shutil.copytree(run[0], root, symlinks=True,
                    ignore=shutil.ignore_patterns("ppo", "results", "export", "ablations"))
    env = {**TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "PPO_STEPS": "auto",
           "PPO_PROBE_SECONDS": "4", "PPO_PROBE_BUDGET": "2", "PPO_PROBE_EPISODE": "5"}
    fresh = {**env, "WORK": str(tmp_path / "fresh")}
    r = run_script(SCRIPT, ENV_ID, "ppo-real", env=fresh)
    assert r.returncode != 0 and "PPO_STEPS=auto: run the ppo-probe stage first" in r.stderr
    r = run_script(SCRIPT, ENV_ID, "ppo-probe", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    steps = int((root / "ppo" / "steps").read_text())
    assert steps > 0 and f"PPO_STEPS=auto is {steps} for both PPO runs" in r.stdout
    assert "dream PPO steps/s" in r.stderr and not (root / "ppo" / "probe.zip").exists()
    rows = (root / "ppo" / "probe.curve.csv").read_text().split()[1:]
    assert len(rows) >= 2


def test_bench_compares_more_predictors(run: tuple[Path, Path, str], tmp_path: Path,
                                        run_script) -> None:
    """BENCH_ALSO adds predictors beside the model and copy-last; BENCH_ARGS reaches
    paired_rollout.py (--per-start keeps each start's values)."""
    import json

    root, _, _ = run
    work = tmp_path / "work"
    shutil.copytree(root, work / ENV_ID, symlinks=True,
                    ignore=shutil.ignore_patterns("ppo", "results", "export", "ablations"))
    other = tmp_path / "other-model"
    shutil.copytree(root / "model", other, ignore=shutil.ignore_patterns("train"))
    r = run_script(SCRIPT, ENV_ID, "bench", timeout=600, env={
        **TINY, "WORK": str(work), "OUT": str(tmp_path / "out"), "BENCH_ALSO": str(other),
        "BENCH_ARGS": "--per-start"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads((work / ENV_ID / "results" / "paired.json").read_text())
    assert set(result["predictors"]) == {str(work / ENV_ID / "model"), "copy-last", str(other)}
    assert "per_start" in result["predictors"][str(other)]["horizons"]["1"]["mse"]


def test_heldout_benches_every_episode_of_its_own_recording(run: tuple[Path, Path, str],
                                                             tmp_path: Path, run_script) -> None:
    """The heldout stage records HELDOUT_STEPS with HELDOUT_SEED once, apart from the training
    data, and benches the model and copy-last on all its episodes, keeping each start's values;
    a second run reuses the recording (the same starts)."""
    root, _, _ = run
    work = copy_run(root, tmp_path / "work")
    env = {**TINY, "WORK": str(work.parent), "OUT": str(tmp_path / "out"),
           "HELDOUT_STEPS": "300", "HELDOUT_SEED": "11", "HELDOUT_STARTS": "2"}
    episodes = len(Dataset(work / "data").split("all"))
    r = run_script(SCRIPT, ENV_ID, "heldout", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    held = Dataset(work / "heldout-11")
    assert sum(len(held.load(ref)) for ref in held.split("all")) == 300
    assert len(Dataset(work / "data").split("all")) == episodes  # the training data unchanged
    first = json.loads((work / "results" / "heldout-11.json").read_text())
    assert first["split"] == "all" and 1 <= first["n_episodes"] <= len(held.split("all"))
    assert all(name.startswith("sticky-random-s11-") for name in first["starts"])
    assert set(first["predictors"]) == {str(work / "model"), "copy-last"}
    assert "per_start" in first["predictors"]["copy-last"]["horizons"]["1"]["mse"]
    r = run_script(SCRIPT, ENV_ID, "heldout", timeout=600, env=env)
    assert r.returncode == 0 and len(Dataset(work / "heldout-11").split("all")) == len(
        held.split("all"))
    again = json.loads((work / "results" / "heldout-11.json").read_text())
    assert again["starts"] == first["starts"]


def copy_run(root: Path, work: Path) -> Path:
    """A copy of the module's pipeline run under `work` (the original stays as the other tests
    see it), without its PPO, results and exports."""
    shutil.copytree(root, work / ENV_ID, symlinks=True,
                    ignore=shutil.ignore_patterns("ppo", "results", "export", "ablations"))
    return work / ENV_ID


def test_metadata_closed_goes_on_from_the_metadata_stage(run: tuple[Path, Path, str],
                                                         tmp_path: Path, run_script) -> None:
    """metadata-closed resumes the metadata stage's run for META_CLOSED_STEPS more steps, in
    closed loop (META_CLOSED_ARGS)."""
    import json

    root = copy_run(run[0], tmp_path / "work")
    r = run_script(SCRIPT, ENV_ID, "metadata-closed", timeout=600, env={
        **TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
        "META_CLOSED_STEPS": "2", "META_CLOSED_ARGS": "--rollout 2 --dream-steps 1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    state = json.loads((root / "model" / "train" / "metadata" / "checkpoint" / "state.json")
                       .read_text())
    assert state["step"] == 4 and state["extra"]["args"]["rollout"] == 2


def test_rewards_stage_writes_one_json_per_policy(run: tuple[Path, Path, str], tmp_path: Path,
                                                  run_script) -> None:
    """rewards runs benchmarks/dream_rewards.py for each of REWARDS_POLICIES, on the run's
    model or REWARDS_MODEL, into results/rewards-<REWARDS_TAG><policy>.json."""
    import json

    root = copy_run(run[0], tmp_path / "work")
    env = {**TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
           "REWARDS_POLICIES": "random sticky-random", "REWARDS_ENVS": "1",
           "REWARDS_STEPS": "3"}
    r = run_script(SCRIPT, ENV_ID, "rewards", timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for policy in ("random", "sticky-random"):
        result = json.loads((root / "results" / f"rewards-{policy}.json").read_text())
        assert result["args"]["policy"] == policy and result["args"]["model"] == str(
            root / "model")
        assert result["results"]["real"]["steps"] == 3
    r = run_script(SCRIPT, ENV_ID, "rewards", timeout=600, env={
        **env, "REWARDS_POLICIES": "random", "REWARDS_MODEL": str(root / "model"),
        "REWARDS_TAG": "other-", "REWARDS_ARGS": "--sample-metadata", "REWARDS_TRACE": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    other = json.loads((root / "results" / "rewards-other-random.json").read_text())
    assert other["args"]["sample_metadata"] is True and result["args"]["sample_metadata"] is False
    assert other["args"]["trace"] == str(root / "results" / "rewards-other-random.trace.npz")
    assert (root / "results" / "rewards-other-random.trace.npz").is_file()
    assert not list((root / "results").glob("rewards-random.trace*"))  # only when asked
    # by default: random play, and the game's scripted player only where it has one
    r = run_script(SCRIPT, ENV_ID, "rewards", timeout=600, env={
        **env, "REWARDS_POLICIES": "", "REWARDS_TAG": "default-"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in (root / "results").glob("rewards-default-*.json")) == [
        "rewards-default-random.json"]  # Breakout has no scripted player


def test_metadata_eval_scores_the_starting_g_phi_on_this_runs_data(
        run: tuple[Path, Path, str], tmp_path: Path, run_script) -> None:
    """metadata-eval evaluates START's g_phi (a copy: START itself is not written) on the
    run's test windows, into results/metadata_eval-start.json."""
    import json

    root = copy_run(run[0], tmp_path / "work")
    start = tmp_path / "start"
    shutil.copytree(root / "model", start, ignore=shutil.ignore_patterns("train", "*_eval.json"))
    before = sorted(p.name for p in start.iterdir())
    r = run_script(SCRIPT, ENV_ID, "metadata-eval", timeout=600, env={
        **TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
        "START": str(start)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads((root / "results" / "metadata_eval-start.json").read_text())
    assert result["split"] == "test" and result["test_windows"] > 0
    assert result["steps"] is None  # evaluated as it is, not trained
    assert sorted(p.name for p in start.iterdir()) == before


def test_sampler_stage_sets_the_folders_context_noise(run: tuple[Path, Path, str],
                                                      tmp_path: Path, run_script) -> None:
    root = copy_run(run[0], tmp_path / "work")
    before = json.loads((root / "model" / "config.json").read_text()).get("sampler", {})
    r = run_script(SCRIPT, ENV_ID, "sampler", timeout=300, env={
        **TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
        "SAMPLER_NOISE": "0.5"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    config = json.loads((root / "model" / "config.json").read_text())
    assert config["sampler"] == {**before, "context_noise": 0.5}
    assert WorldModel.from_pretrained(root / "model").context_noise == 0.5


def test_background_groups_copy_the_committed_model_once(tmp_path: Path, run_script) -> None:
    """Two stages started side by side (gpu_session.sh's '&' groups) may both be the first to
    read the model folder: one copies the committed model in, the others wait and find it
    (before the lock, a second copy failed with 'cp: cannot create regular file')."""
    start = tmp_path / "committed"
    start.mkdir()
    (start / "config.json").write_text('{"marker": 1}')
    weights = {f"part{i}.safetensors": bytes([i]) * 200_000 for i in range(6)}
    for name, data in weights.items():
        (start / name).write_bytes(data)
    env = {**TINY, "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out"),
           "START": str(start), "PPO_DREAM_ARGS": "--no-such-flag"}
    with ThreadPoolExecutor(4) as pool:  # ppo-dream stops at the flag, after the copy
        runs = list(pool.map(lambda _: run_script(SCRIPT, ENV_ID, "ppo-dream", env=env),
                             range(4)))
    logs = [r.stdout + r.stderr for r in runs]
    assert all("--no-such-flag" in log for log in logs), logs[0][-2000:]
    assert not any("cannot create" in log for log in logs), "\n".join(logs)[-3000:]
    assert sum(log.count("starting from the committed model") for log in logs) == 1
    model = tmp_path / "work" / ENV_ID / "model"
    assert (model / "config.json").read_text() == '{"marker": 1}'
    assert {p.name: p.read_bytes() for p in model.glob("*.safetensors")} == weights
    assert not (tmp_path / "work" / ENV_ID / "model.partial").exists()
