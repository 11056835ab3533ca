"""Frame-quality metrics for predicted vs. ground-truth video frames.

Definitions (fixed, so numbers compare with published ones):

- Frames are RGB ``uint8`` arrays shaped ``(..., H, W, 3)``, compared at native resolution.
- MSE: mean of ``(pred - target) ** 2`` over all pixels and channels, on the 0-255 scale,
  in float64, one value per frame.
- PSNR: ``10 * log10(255**2 / MSE)`` in dB, ``+inf`` where MSE == 0. Two aggregates are
  reported: ``psnr_mean_per_frame`` (mean of per-frame PSNR; ``inf`` if any frame is exact)
  and ``psnr_of_mean_mse`` (PSNR of the mean MSE; finite unless every frame is exact).
- SSIM: ``skimage.metrics.structural_similarity`` per frame on the uint8 frames with
  ``channel_axis=-1, data_range=255`` and skimage defaults otherwise (7x7 uniform window,
  so frames must be at least 7x7).
- LPIPS: ``lpips.LPIPS(net="alex")`` (v0.1), inputs scaled to [-1, 1], NCHW. Measured only
  when torchvision's AlexNet weights are present locally (see ``alexnet_weights_path``);
  otherwise reported as not measured, never approximated.
- Confidence intervals: 95% percentile bootstrap over frames, 1000 resamples, seed 0.

Summaries are JSON-serialisable; ``inf`` is kept as ``float("inf")`` (``json.dumps`` writes
``Infinity``), which only occurs for PSNR of exactly reproduced frames.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity

ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
_MAX_BOOTSTRAP_ELEMENTS = 1 << 22  # bounds memory of one vectorised bootstrap chunk


def _check_frames(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs target {target.shape}")
    if pred.dtype != np.uint8 or target.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got pred {pred.dtype} and target {target.dtype}")
    if pred.ndim < 3 or pred.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (..., H, W, 3), got {pred.shape}")
    return pred, target


def mse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame MSE on the 0-255 scale; ``(..., H, W, 3) -> (...)``, float64."""
    pred, target = _check_frames(pred, target)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    return np.mean(diff * diff, axis=(-3, -2, -1))


def psnr_from_mse(mse: np.ndarray | float) -> np.ndarray:
    """PSNR in dB from MSE on the 0-255 scale; ``+inf`` where ``mse == 0``."""
    mse = np.asarray(mse, dtype=np.float64)
    ratio = np.divide(255.0**2, mse, out=np.full_like(mse, np.inf), where=mse > 0)
    return 10.0 * np.log10(ratio)


def ssim(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame SSIM, ``(..., H, W, 3) -> (...)``; skimage, channel_axis=-1, data_range=255."""
    pred, target = _check_frames(pred, target)
    lead = pred.shape[:-3]
    p, t = pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *target.shape[-3:])
    out = [
        structural_similarity(a, b, channel_axis=-1, data_range=255)
        for a, b in zip(p, t, strict=True)
    ]
    return np.asarray(out, dtype=np.float64).reshape(lead)


def alexnet_weights_path() -> Path:
    """Where torchvision (and hence lpips) looks for the AlexNet weights.

    ``torch.hub.get_dir() / "checkpoints" / "alexnet-owt-7be5be79.pth"``; the hub directory is
    ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_URL.rsplit("/", 1)[-1]


def _missing_weights_reason(path: Path) -> str:
    return (
        f"LPIPS not measured: the AlexNet weights are missing. Download {ALEXNET_URL} and put "
        f"the file at {path} (torch.hub.get_dir()/checkpoints/; the directory is "
        f"$TORCH_HOME/hub/checkpoints, so set $TORCH_HOME to change it)."
    )


class LPIPSMetric:
    """LPIPS (AlexNet, v0.1) per frame, or unavailable when the AlexNet weights are missing.

    Parameters
    ----------
    device : torch device to run on.
    batch_size : frames per forward pass.

    Attributes
    ----------
    available : whether LPIPS can be measured.
    reason : why not (includes the expected weights path), else None.
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._model: torch.nn.Module | None = None
        path = alexnet_weights_path()
        if not path.is_file():
            self.available, self.reason = False, _missing_weights_reason(path)
            return
        import lpips  # deferred: only needed when the weights exist

        with warnings.catch_warnings():  # torchvision's "pretrained" deprecation warnings
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net="alex", verbose=False)
        self._model = model.to(self.device).eval()
        self.available, self.reason = True, None

    @torch.no_grad()
    def __call__(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        """Per-frame LPIPS, ``(..., H, W, 3) -> (...)`` float64; None if not available."""
        if self._model is None:
            return None
        pred, target = _check_frames(pred, target)
        lead = pred.shape[:-3]
        p, t = pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *target.shape[-3:])
        out = []
        for i in range(0, len(p), self.batch_size):
            a, b = (self._to_tensor(x[i : i + self.batch_size]) for x in (p, t))
            out.append(self._model(a, b).reshape(-1).double().cpu().numpy())
        values = np.concatenate(out) if out else np.zeros(0, dtype=np.float64)
        return values.reshape(lead)

    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def bootstrap_ci(
    values: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Callable[..., Any] = np.mean,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over a 1-D sample.

    ``statistic`` must accept an ``axis`` keyword. A single value ``v`` gives ``(v, v)``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = values.size
    if n == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 1:
        v = float(statistic(values))
        return v, v
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_BOOTSTRAP_ELEMENTS // n)
    stats = np.concatenate(
        [
            statistic(values[rng.integers(0, n, size=(min(chunk, n_resamples - i), n))], axis=1)
            for i in range(0, n_resamples, chunk)
        ]
    )
    alpha = (1.0 - confidence) / 2.0
    # Interpolating between infinite statistics yields nan; take order statistics instead.
    method = "linear" if np.all(np.isfinite(stats)) else "inverted_cdf"
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha], method=method)
    return float(lo), float(hi)


def summarize(values: np.ndarray) -> dict[str, Any]:
    """``{"mean": float, "ci95": [lo, hi], "n": int}`` over samples (bootstrap 95% CI)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    lo, hi = bootstrap_ci(values)
    return {"mean": float(np.mean(values)), "ci95": [lo, hi], "n": int(values.size)}


def frame_metrics(
    pred: np.ndarray, target: np.ndarray, lpips_metric: LPIPSMetric | None = None
) -> dict[str, np.ndarray | None]:
    """Per-frame ``{"mse", "psnr", "ssim", "lpips"}`` arrays of shape ``(N,)``.

    Leading axes of ``(..., H, W, 3)`` inputs are flattened into N. ``"lpips"`` is None when
    no metric is given or it is not available.
    """
    pred, target = _check_frames(pred, target)
    pred, target = pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *target.shape[-3:])
    m = mse(pred, target)
    return {
        "mse": m,
        "psnr": psnr_from_mse(m),
        "ssim": ssim(pred, target),
        "lpips": lpips_metric(pred, target) if lpips_metric is not None else None,
    }


def summarize_frame_metrics(
    per_frame: dict[str, np.ndarray | None], lpips_note: str | None = None
) -> dict[str, Any]:
    """Summaries of ``frame_metrics`` output, JSON-serialisable.

    Keys: ``"mse"``, ``"psnr_mean_per_frame"``, ``"psnr_of_mean_mse"`` (mean and CI from the
    bootstrap CI of the mean MSE, converted), ``"ssim"``, ``"lpips"``. When LPIPS was not
    measured, ``"lpips"`` is ``{"mean": None, "note": ...}`` with ``lpips_note`` (pass
    ``LPIPSMetric.reason``) or a default explanation.
    """
    m = np.asarray(per_frame["mse"], dtype=np.float64).reshape(-1)
    mse_lo, mse_hi = bootstrap_ci(m)
    summary: dict[str, Any] = {
        "mse": summarize(m),
        "psnr_mean_per_frame": summarize(per_frame["psnr"]),
        "psnr_of_mean_mse": {
            "mean": float(psnr_from_mse(np.mean(m))),
            "ci95": [float(psnr_from_mse(mse_hi)), float(psnr_from_mse(mse_lo))],
            "n": int(m.size),
        },
        "ssim": summarize(per_frame["ssim"]),
    }
    if per_frame.get("lpips") is not None:
        summary["lpips"] = summarize(per_frame["lpips"])
    else:
        path = alexnet_weights_path()
        default = (
            _missing_weights_reason(path)
            if not path.is_file()
            else "LPIPS not measured: no LPIPSMetric was passed to frame_metrics."
        )
        summary["lpips"] = {"mean": None, "note": lpips_note or default}
    return summary


def reconstruction_floor(vae: Any, frames: np.ndarray, batch_size: int,
                         autocast: Callable[[], contextlib.AbstractContextManager],
                         decoder: Any = None) -> dict:
    """A frame VAE's reconstruction floor (`neuralgym.models.vae.FrameVAE`): encode `frames`
    (N, H, W, 3) uint8 (posterior mean) and decode them with `decoder`
    (default: the VAE's own) at native resolution: the lowest MSE a prediction decoded this way
    can reach. MSE on the 0-255 scale with a bootstrap CI, PSNR of the mean MSE and per frame."""
    decoder = vae if decoder is None else decoder
    recon = []
    for i in range(0, len(frames), batch_size):
        with autocast():
            recon.append(decoder.decode(vae.encode(frames[i : i + batch_size])).cpu().numpy())
    per_frame = mse(np.concatenate(recon), frames)  # (N,)
    return {
        "mse": float(per_frame.mean()),
        "mse_ci95": summarize(per_frame)["ci95"],
        "psnr_of_mean_mse": float(psnr_from_mse(per_frame.mean())),
        "psnr_mean_per_frame": float(np.mean(psnr_from_mse(per_frame))),
        "n_frames": int(len(frames)),
    }
