"""benchmarks/throughput.py on tiny untrained world models, CPU, short timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

SCRIPT = "benchmarks/throughput.py"
TINY = ["--device", "cpu", "--batch-sizes", "1", "2", "--steps", "1", "2", "--seconds", "0.5",
        "--real-workers", "2"]


@pytest.fixture(scope="module")
def throughput(load_script):
    """The script as a module (for its functions)."""
    return load_script(SCRIPT, "throughput_script")


@pytest.fixture(scope="module")
def main_run(tiny_world_model: Path, tmp_path_factory: pytest.TempPathFactory, run_script):
    out = tmp_path_factory.mktemp("throughput") / "t.json"
    proc = run_script(SCRIPT, "--model", tiny_world_model, "--env", "NeuralBreakout-v0", *TINY,
                      "--max-batch-cap", "4", "--json", out)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def test_json_layout(main_run):
    _, report = main_run
    assert report["complete"] is True
    assert report["env_id"] == "NeuralBreakout-v0"
    for key in ("platform", "cpus", "torch", "device", "gpu"):
        assert key in report["machine"], key
    assert report["machine"]["device"] == "cpu" and report["machine"]["gpu"] is None
    model = report["model"]
    assert model["frames_per_call"] == 1 and model["default_steps"] == 2
    params = model["params"]
    assert params["total"] == params["vae"] + params["metadata"] + params["denoiser"] > 0
    assert 0 < params["vae_decoder"] < params["vae"]
    # on the CPU: the library as it ships, no CUDA graphs (noted), no compile (default off)
    assert [v["name"] for v in report["variants"]] == ["eager"]
    assert report["notes"] == []
    points = report["variants"][0]["points"]
    assert {(p["batch_size"], p["steps"], p["decode"]) for p in points} == {
        (b, s, d) for b in (1, 2) for s in (1, 2) for d in (True, False)}


def test_throughputs_positive_and_consistent(main_run):
    _, report = main_run
    for p in report["variants"][0]["points"]:
        assert "error" not in p, p
        assert p["frames_per_s"] > 0 and p["ms_per_call"] > 0
        assert p["frames_per_s"] == pytest.approx(p["calls_per_s"] * p["batch_size"]
                                                  * p["frames_per_call"])
        assert p["frames_per_s_min"] <= p["frames_per_s"] <= p["frames_per_s_max"]
        assert p["repeats"] >= 3
        assert p["achieved_tflops"] > 0
        assert "peak_fraction" not in p  # no peak on the CPU


def test_flops_grow_with_steps(main_run):
    flops = main_run[1]["flops"]
    one, two = flops["per_steps"]["1"], flops["per_steps"]["2"]
    assert 0 < one["per_frame"] < two["per_frame"]
    assert 0 < one["per_frame_latent_only"] < one["per_frame"]
    # one more denoiser call adds the same FLOPs with or without the decode
    assert two["per_frame"] - one["per_frame"] == pytest.approx(
        two["per_frame_latent_only"] - one["per_frame_latent_only"])
    assert one["decode_per_frame"] == pytest.approx(two["decode_per_frame"])
    assert flops["peak"] is None


def test_real_emulator_numbers(main_run):
    real = main_run[1]["real_env"]
    assert real["env_id"] == "NeuralBreakout-v0" and real["workers"] == 2
    assert real["single_process"]["steps_per_s"] > 0
    multi = real["multi_process"]
    assert multi["errors"] == 0 and len(multi["per_worker"]) == 2
    assert multi["steps_per_s"] == pytest.approx(sum(w["steps_per_s"]
                                                     for w in multi["per_worker"]))
    assert all(w["seconds"] >= 0.5 for w in multi["per_worker"])


def test_max_batch_search_and_targets(main_run):
    report = main_run[1]
    search = report["variants"][0]["max_batch"]
    assert search["largest_batch"] == 4 and search["stopped"] == "cap 4 reached"
    assert search["steps"] == 2  # the model's own step count
    assert [p["batch_size"] for p in search["points"]] == [4]
    targets = {t["target"]: t for t in report["targets"]}
    assert len(targets) == 3
    for t in targets.values():
        assert t["measured_frames_per_s"] > 0
    assert targets["batch 1, one H100"]["applies_here"] is False
    assert targets["batch 1, one H100"]["met"] is None


def test_markdown_table(main_run):
    stdout = main_run[0].stdout
    assert "| variant | B | S | frames/s |" in stdout
    assert "| eager | 2 | 2 |" in stdout
    assert "Real emulator" in stdout and "Targets" in stdout


def test_multi_frame_model(world_model_builder, tmp_path: Path, throughput):
    """T = 2: frames/s counts both frames of a call."""
    model = world_model_builder(tmp_path / "t2", frames_per_call=2)
    args = throughput.Args(model=model, env="NeuralBreakout-v0", batch_sizes=[1], steps=[1],
                           seconds=0.2, warmup=1, real_workers=0, json=tmp_path / "r.json")
    report = throughput.main(args)
    assert report["model"]["frames_per_call"] == 2
    point = report["variants"][0]["points"][0]
    assert point["frames_per_s"] == pytest.approx(2 * point["calls_per_s"])
    assert "multi_process" not in report["real_env"]
    assert json.loads((tmp_path / "r.json").read_text())["complete"] is True
    with pytest.raises(throughput.BenchmarkError, match="2 frames per call"):
        throughput.main(throughput.Args(model=model, env="NeuralBreakout-v0",
                                        frames_per_call=1))


def test_unknown_env_is_a_clear_error(tiny_world_model: Path, run_script):
    proc = run_script(SCRIPT, "--model", tiny_world_model, "--env", "NeuralTetris-v0", timeout=60)
    assert proc.returncode != 0
    assert "throughput.py: error: unknown env id 'NeuralTetris-v0'" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("case", ["missing model", "other game", "no cuda"])
def test_clear_errors(case: str, tiny_world_model: Path, tmp_path: Path, throughput):
    env, model, device, message = {
        "missing model": ("NeuralBreakout-v0", tmp_path / "nowhere", "cpu", "does not exist"),
        "other game": ("NeuralPong-v0", tiny_world_model, "cpu",
                       "is a model of NeuralBreakout-v0"),
        "no cuda": ("NeuralBreakout-v0", tiny_world_model, "cuda", "no CUDA device"),
    }[case]
    if case == "no cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(throughput.BenchmarkError, match=message):
        throughput.main(throughput.Args(model=model, env=env, device=device))


def test_find_max_batch_stops_at_oom(throughput):
    def try_batch(batch: int) -> dict:
        return {"error": "out of memory", "oom": True} if batch > 8 else {"frames_per_s": 1.0}

    result = throughput.find_max_batch(try_batch, 2, 1024)
    assert result["largest_batch"] == 8
    assert result["stopped"] == "out of memory at batch 16"
    assert len(result["points"]) == 4  # 2, 4, 8, 16
    assert throughput.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert not throughput.is_oom(RuntimeError("shapes do not match"))


def test_variants_on_cpu(throughput):
    args = throughput.Args(model=Path("m"), env="NeuralBreakout-v0", cuda_graphs=True,
                           compile=True)
    variants, notes = throughput.choose_variants(args, cuda=False)
    assert [v.name for v in variants] == ["eager", "compile[default]"]
    assert any("needs a CUDA device" in n for n in notes)
    variants, _ = throughput.choose_variants(throughput.Args(model=Path("m"), env="x"),
                                             cuda=True)
    assert [v.name for v in variants] == ["eager", "cuda-graphs", "compile[reduce-overhead]"]
    assert variants[2].inductor_graphs and not variants[1].inductor_graphs


def test_run_variant_skips_batches_past_a_failure(throughput, monkeypatch):
    """Out of memory (or, once the variant has run, any error) at a batch skips the larger
    batches of that mode only; an error before anything ran stops the variant."""

    class FakeModel:
        frames_per_call = 1

    def fake_point(wm, variant, batch, steps, decode, args, flops, peak):
        point = {"variant": variant.name, "batch_size": batch, "steps": steps,
                 "decode": decode}
        if decode and batch >= 4:
            return {**point, "error": "out of memory", "oom": True}
        if not decode and batch >= 8:
            return {**point, "error": "RuntimeError: INT_MAX", "oom": False}
        return {**point, "frames_per_s": float(batch), "ms_per_call": 1.0, "warmup_s": 0.0}

    monkeypatch.setattr(throughput, "load_model", lambda args, variant: FakeModel())
    monkeypatch.setattr(throughput, "measure_point", fake_point)
    args = throughput.Args(model=Path("m"), env="NeuralBreakout-v0", batch_sizes=[1, 4, 8, 16],
                           steps=[1, 2])
    result: dict = {"error": None, "points": []}
    throughput.run_variant(throughput.Variant("eager"), args, {}, None, 1024,
                           throughput.Report(None, {}), result, 2)
    assert result["error"] is None
    by_key = {(p["batch_size"], p["steps"], p["decode"]): p for p in result["points"]}
    assert len(by_key) == 16
    assert by_key[(4, 1, True)]["error"] == "out of memory"
    assert by_key[(4, 2, True)]["error"].startswith("skipped: batch 4 failed")
    assert "frames_per_s" in by_key[(4, 2, False)]
    assert by_key[(16, 1, False)]["error"].startswith("skipped: batch 8 failed")
    assert result["max_batch"]["largest_batch"] == 1
    assert "out of memory at batch 4" in result["max_batch"]["stopped"]

    monkeypatch.setattr(throughput, "measure_point", lambda *a: {
        "variant": "x", "batch_size": 1, "steps": 1, "decode": True,
        "error": "BackendCompilerFailed: no compiler", "oom": False})
    result = {"error": None, "points": []}
    throughput.run_variant(throughput.Variant("compile[default]", compile_mode="default"),
                           args, {}, None, 0, throughput.Report(None, {}), result, 2)
    assert len(result["points"]) == 1
    assert "no compiler" in result["error"]


def test_bf16_weights(world_model_builder, tmp_path: Path, throughput):
    """--bf16-weights (`WorldModel.hold_in_bf16`): the backbone and the fast decoder hold bf16
    weights, their outputs stay float32 and near the float32 model's, and a run completes."""
    from neuralgym.model_folder import ModelFolder
    from neuralgym.models.decoder import FrameDecoder, decoder_config
    from neuralgym.models.vae import FrameVAE
    from neuralgym.world_model import WorldModel

    model = world_model_builder(tmp_path / "m")
    config = decoder_config(FrameVAE.from_folder(model).config, (4, 4, 4), 0, 4)
    ModelFolder(model).save_component("decoder", FrameDecoder(config), config)
    ref = WorldModel.from_pretrained(model, decoder="fast")
    wm = WorldModel.from_pretrained(model, decoder="fast")
    wm.hold_in_bf16()
    assert wm.bf16_weights and not ref.bf16_weights
    forward = wm.denoiser.backbone.forward
    wm.hold_in_bf16()  # a second call does nothing (no second cast wrapper)
    assert wm.denoiser.backbone.forward is forward
    assert next(wm.denoiser.backbone.parameters()).dtype == torch.bfloat16
    assert next(wm.decoder.parameters()).dtype == torch.bfloat16
    assert next(wm.vae.parameters()).dtype == torch.float32  # the encoder is left alone
    z = torch.randn(2, *wm.vae.config.latent_shape)
    want, got = ref.decoder.decode(z), wm.decoder.decode(z)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert (got.float() - want.float()).abs().mean() < 4  # 0-255 frames
    args = throughput.Args(model=model, env="NeuralBreakout-v0", batch_sizes=[2], steps=[1],
                           seconds=0.2, warmup=1, real_workers=0, bf16_weights=True,
                           decoder="fast")
    report = throughput.main(args)
    assert report["complete"] is True
    assert all(p["frames_per_s"] > 0 for p in report["variants"][0]["points"])


@pytest.mark.parametrize("gpu,applies,card", [
    ("NVIDIA H100 80GB HBM3", True, "yes"),
    ("NVIDIA H200", True, "yes (here an H200: "),
    ("NVIDIA A100-SXM4-80GB", False, "no (one H100)"),
])
def test_h100_targets_are_judged_on_h100_class_cards(throughput, gpu: str, applies: bool,
                                                     card: str):
    """The H100 targets apply on an H100 and on an H200 (its chip), named as such, and not on
    other cards; 'met' compares the best point at the judged step count with the goal."""
    def point(batch: int, fps: float) -> dict:
        return {"variant": "cuda-graphs", "batch_size": batch, "steps": 3, "decode": True,
                "frames_per_s": fps}

    data = {"machine": {"gpu": gpu, "cpus": 16, "device": "cuda"},
            "variants": [{"name": "cuda-graphs", "points": [point(1, 121.5), point(1024, 5000.0)]}]}
    targets = {t["target"]: t for t in throughput.targets(data, 3)}
    batch1, batched = targets["batch 1, one H100"], targets["batched, one H100"]
    assert batch1["applies_here"] is applies and batched["applies_here"] is applies
    assert throughput.applies_cell(batch1).startswith(card)  # the table names the card
    assert batch1["met"] is (True if applies else None)
    assert batched["met"] is (False if applies else None)
    assert targets["batch 1, 2-core CPU, shipped model"]["applies_here"] is False
