"""Fixtures for the training-script tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralgym.data import Dataset
from neuralgym.latents import LatentCache


@pytest.fixture(scope="session")
def breakout_cache(breakout_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's episodes as a LatentCache whose "latents" are frames pooled to 3x13x10
    (no VAE needed), without info.json normalisation stats (the scripts compute them)."""
    lat, meta, acts, rows, start = [], [], [], [], 0
    for ref in breakout_dataset.split("all"):
        ep = breakout_dataset.load(ref)
        f = np.asarray(ep.frames[:, :208], np.float32)  # (N+1, 208, 160, 3)
        f = f.reshape(len(f), 13, 16, 10, 16, 3).mean(axis=(2, 4))  # (N+1, 13, 10, 3)
        lat.append(f.transpose(0, 3, 1, 2) / 32 - 1)  # (N+1, 3, 13, 10)
        meta.append(ep.metadata)
        acts.append(np.concatenate([ep.actions, [-1]]))
        rows.append((start, len(ep) + 1, int(ref.split == "test")))
        start += len(ep) + 1
    root = tmp_path_factory.mktemp("pooled_cache") / "cache"
    info = {"env_id": breakout_dataset.env_id, "metadata_names": breakout_dataset.metadata_names}
    LatentCache.write(root, np.concatenate(lat), np.concatenate(meta), np.concatenate(acts),
                      np.asarray(rows), info)
    return root
