import json
import math
import types

import numpy as np
import pytest
import torch

from neuralgym import metrics
from neuralgym.metrics import (
    LPIPSMetric,
    alexnet_weights_path,
    bootstrap_ci,
    frame_metrics,
    mse,
    psnr_from_mse,
    ssim,
    summarize,
    summarize_frame_metrics,
)


def _frames(n: int = 4, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Point torch hub at an empty directory, as on a machine without the AlexNet file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # drop any torch.hub.set_dir override
    return tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"


def test_mse_psnr_hand_computed():
    target = np.full((2, 8, 8, 3), 100, dtype=np.uint8)
    pred = target.copy()
    pred[0] += 10  # every value off by 10 -> MSE 100
    pred[1, 0, 0, 0] = 151  # one of 192 values off by 51 -> MSE 51**2 / 192
    m = mse(pred, target)
    assert m.shape == (2,) and m.dtype == np.float64
    np.testing.assert_allclose(m, [100.0, 51**2 / 192])
    p = psnr_from_mse(m)
    assert p[0] == pytest.approx(28.1308, abs=1e-4)  # 10*log10(65025/100)
    assert p[1] == pytest.approx(10 * math.log10(255**2 * 192 / 51**2))


def test_mse_no_uint8_wraparound():
    pred = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    target = np.full_like(pred, 255)
    assert mse(pred, target)[0] == 255.0**2
    assert mse(target, pred)[0] == 255.0**2
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)


def test_identical_frames(recwarn):
    x = _frames()
    assert np.all(mse(x, x) == 0)
    p = psnr_from_mse(mse(x, x))
    assert np.all(np.isposinf(p))
    np.testing.assert_allclose(ssim(x, x), 1.0)
    assert len(recwarn) == 0  # no divide-by-zero warning


def test_leading_axes_kept():
    x, y = _frames(6), _frames(6, seed=1)
    x, y = x.reshape(2, 3, 16, 16, 3), y.reshape(2, 3, 16, 16, 3)
    assert mse(x, y).shape == (2, 3)
    assert ssim(x, y).shape == (2, 3)
    np.testing.assert_allclose(
        ssim(x, y).ravel(), ssim(x.reshape(6, 16, 16, 3), y.reshape(6, 16, 16, 3))
    )


def test_ssim_lower_for_different_frames():
    x, y = _frames(), _frames(seed=1)
    s = ssim(x, y)
    assert s.shape == (4,) and np.all(s < 0.5)


@pytest.mark.parametrize("fn", [mse, ssim, frame_metrics])
def test_validation(fn):
    x = _frames()
    with pytest.raises(ValueError, match="shape"):
        fn(x, x[:, :8])
    with pytest.raises(ValueError, match="uint8"):
        fn(x.astype(np.float32), x)
    with pytest.raises(ValueError, match="uint8"):
        fn(x, x.astype(np.int64))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        fn(x[..., :1], x[..., :1])


def test_bootstrap_contains_mean_and_deterministic():
    v = np.random.default_rng(1).normal(5.0, 2.0, size=50)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi
    assert bootstrap_ci(v, seed=3) == bootstrap_ci(v, seed=3)
    assert bootstrap_ci(v, seed=3) != bootstrap_ci(v, seed=4)
    assert isinstance(lo, float) and isinstance(hi, float)


def test_bootstrap_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    small, large = rng.normal(size=30), rng.normal(size=3000)
    w_small = np.subtract(*bootstrap_ci(small)[::-1])
    w_large = np.subtract(*bootstrap_ci(large)[::-1])
    assert 0 < w_large < w_small / 5


def test_bootstrap_matches_normal_theory():
    n = 400
    v = np.random.default_rng(3).normal(10.0, 3.0, size=n)
    lo, hi = bootstrap_ci(v, n_resamples=4000)
    half = 1.96 * v.std(ddof=1) / math.sqrt(n)
    assert lo == pytest.approx(v.mean() - half, abs=0.1 * half)
    assert hi == pytest.approx(v.mean() + half, abs=0.1 * half)


def test_bootstrap_chunking_does_not_change_result(monkeypatch):
    v = np.random.default_rng(4).normal(size=100)
    expected = bootstrap_ci(v, n_resamples=500)
    monkeypatch.setattr(metrics, "_MAX_BOOTSTRAP_ELEMENTS", 100 * 7)  # 7 resamples per chunk
    assert bootstrap_ci(v, n_resamples=500) == expected


def test_bootstrap_edge_cases():
    assert bootstrap_ci([3.5]) == (3.5, 3.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], statistic=np.median)
    assert 1.0 <= lo <= hi <= 4.0
    # infinite PSNRs must not turn into nan
    lo, hi = bootstrap_ci([30.0, 31.0, math.inf, 29.0])
    assert not math.isnan(lo) and not math.isnan(hi)


def test_summarize():
    s = summarize(np.array([1.0, 2.0, 3.0]))
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["ci95"][0] <= 2.0 <= s["ci95"][1]
    json.dumps(s)


def test_alexnet_weights_path_follows_torch_home(no_weights):
    assert alexnet_weights_path() == no_weights


def test_lpips_unavailable_without_weights(no_weights):
    metric = LPIPSMetric()
    assert metric.available is False
    assert str(no_weights) in metric.reason
    assert "TORCH_HOME" in metric.reason and "AlexNet" in metric.reason
    x = _frames()
    assert metric(x, x) is None
    per_frame = frame_metrics(x, x, metric)
    assert per_frame["lpips"] is None
    summary = summarize_frame_metrics(per_frame, lpips_note=metric.reason)
    assert summary["lpips"] == {"mean": None, "note": metric.reason}
    # without an explicit note the missing-weights reason is still reported
    assert str(no_weights) in summarize_frame_metrics(per_frame)["lpips"]["note"]


def test_lpips_plumbing_with_stub_trunk(no_weights, monkeypatch):
    """Conversion and batching, with a randomly initialised trunk (plumbing only, no numbers)."""
    import lpips.pretrained_networks as pn
    import torchvision

    no_weights.parent.mkdir(parents=True)
    no_weights.touch()  # the availability check only looks for the file
    stub = types.SimpleNamespace(alexnet=lambda **_: torchvision.models.alexnet(weights=None))
    monkeypatch.setattr(pn, "tv", stub)
    torch.manual_seed(0)
    metric = LPIPSMetric(batch_size=3)
    assert metric.available and metric.reason is None
    x, y = _frames(5, 32, 32), _frames(5, 32, 32, seed=1)
    same, diff = metric(x, x), metric(x, y)
    assert same.shape == diff.shape == (5,) and same.dtype == np.float64
    np.testing.assert_allclose(same, 0.0, atol=1e-6)
    assert np.all(diff > 0)
    metric.batch_size = 16
    np.testing.assert_allclose(metric(x, y), diff, rtol=1e-5)
    assert metric(x.reshape(1, 5, 32, 32, 3), y.reshape(1, 5, 32, 32, 3)).shape == (1, 5)
    s = summarize_frame_metrics(frame_metrics(x, y, metric))
    assert s["lpips"]["n"] == 5 and s["lpips"]["mean"] > 0


@pytest.mark.skipif(
    not alexnet_weights_path().is_file(),
    reason=f"real LPIPS not tested: AlexNet weights missing at {alexnet_weights_path()}",
)
def test_lpips_real_weights():
    metric = LPIPSMetric()
    assert metric.available
    x, y = _frames(3, 64, 64), _frames(3, 64, 64, seed=1)
    np.testing.assert_allclose(metric(x, x), 0.0, atol=1e-5)
    assert np.all(metric(x, y) > 0.1)


def test_frame_metrics_and_summary_json():
    target = np.full((6, 16, 16, 3), 100, dtype=np.uint8)
    pred = target.copy()
    pred[:3] += 10  # MSE 100 on half the frames, exact on the rest
    per_frame = frame_metrics(pred, target)
    assert set(per_frame) == {"mse", "psnr", "ssim", "lpips"}
    assert per_frame["lpips"] is None
    for k in ("mse", "psnr", "ssim"):
        assert per_frame[k].shape == (6,)
    s = summarize_frame_metrics(per_frame)
    assert set(s) == {"mse", "psnr_mean_per_frame", "psnr_of_mean_mse", "ssim", "lpips"}
    assert s["mse"]["mean"] == 50.0
    assert s["psnr_mean_per_frame"]["mean"] == math.inf  # documented: exact frames give inf
    assert s["psnr_of_mean_mse"]["mean"] == pytest.approx(10 * math.log10(255**2 / 50))
    lo, hi = s["psnr_of_mean_mse"]["ci95"]
    assert lo <= s["psnr_of_mean_mse"]["mean"] <= hi
    assert s["lpips"]["mean"] is None and "not measured" in s["lpips"]["note"]
    text = json.dumps(s)
    assert json.loads(text)["ssim"]["n"] == 6
