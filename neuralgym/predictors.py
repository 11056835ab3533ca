"""Frame predictors that the paired benchmark compares against the real game.

A predictor is given the same K real context frames, their metadata and the actions between
them, plus the *future* actions the real env will receive, and returns the frames it predicts
(`rollout`), or those frames and the metadata it predicts beside them
(`rollout_with_metadata`: the game variables that the game's rules turn into rewards and
episode ends). The benchmark knows the whole action sequence, so a multi-frame model can use
all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Predictor(Protocol):
    name: str
    context: int  # K, the number of real frames it is given

    def rollout(
        self,
        frames: np.ndarray,  # (B, K, H, W, 3) uint8, o_{t-K+1} .. o_t
        metadata: np.ndarray,  # (B, K, M) float32, m_{t-K+1} .. m_t
        past_actions: np.ndarray,  # (B, K-1) int64, a_{t-K+1} .. a_{t-1} (between the frames)
        future_actions: np.ndarray,  # (B, L) int64, a_t .. a_{t+L-1}
        seed: int,
    ) -> np.ndarray:  # (B, L, H, W, 3) uint8, predicted o_{t+1} .. o_{t+L}
        ...

    def rollout_with_metadata(
        self,
        frames: np.ndarray,  # (B, K, H, W, 3) uint8, o_{t-K+1} .. o_t
        metadata: np.ndarray,  # (B, K, M) float32, m_{t-K+1} .. m_t
        past_actions: np.ndarray,  # (B, K-1) int64
        future_actions: np.ndarray,  # (B, L) int64, a_t .. a_{t+L-1}
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray]:  # frames as `rollout`; (B, L, M) float32 m_{t+1} .. m_{t+L}
        ...


class CopyLast:
    """The copy-last-frame baseline: o_{t+h} = o_t and m_{t+h} = m_t for every h (so the
    rewards it predicts are 0). Always reported beside a model."""

    name = "copy-last"
    context = 1

    def rollout(self, frames: np.ndarray, metadata: np.ndarray, past_actions: np.ndarray,
                future_actions: np.ndarray, seed: int) -> np.ndarray:
        return self.rollout_with_metadata(frames, metadata, past_actions, future_actions,
                                          seed)[0]

    def rollout_with_metadata(self, frames: np.ndarray, metadata: np.ndarray,
                              past_actions: np.ndarray, future_actions: np.ndarray, seed: int
                              ) -> tuple[np.ndarray, np.ndarray]:
        L = future_actions.shape[1]
        last = np.asarray(metadata, np.float32)[:, -1:]  # (B, 1, M)
        return np.repeat(frames[:, -1:], L, axis=1), np.repeat(last, L, axis=1)


class NoModelError(FileNotFoundError):
    """There are no weights where a world model was asked for."""


SHIPPED = Path(__file__).parent / "shipped"


def shipped_model(env_id: str) -> Path:
    """The folder of the model that ships with neuralgym for `env_id` (may not exist)."""
    return SHIPPED / env_id.removeprefix("Neural").removesuffix("-v0").lower()


def load_predictor(name: str, env_id: str, device: str = "cpu", decoder: str = "auto"
                   ) -> Predictor:
    """`copy-last`, `default` (the shipped model of `env_id`) or a world-model folder;
    `decoder` as for `WorldModel.from_pretrained` ("auto", "vae" or "fast")."""
    if name == "copy-last":
        return CopyLast()
    path = shipped_model(env_id) if name == "default" else Path(name)
    if name == "default" and not _complete(path):
        raise NoModelError(
            f"no shipped model for {env_id} yet: train one (see README, 'Training a world "
            "model') and pass its folder as --predictor DIR"
        )
    if not path.exists():
        raise NoModelError(
            f"predictor {name!r} is neither 'copy-last', 'default' nor an existing "
            "world-model folder"
        )
    from neuralgym.world_model import WorldModel

    model = WorldModel.from_pretrained(path, device=device, decoder=decoder)
    trained_on = model_env_id(path)
    if trained_on != env_id:
        raise NoModelError(f"{path} is a model of {trained_on}, not {env_id}")
    model.name = "default" if name == "default" else str(name)
    return model


def _complete(path: Path) -> bool:
    """Whether a shipped folder holds a whole model (a VAE alone is a start, not a model)."""
    from neuralgym.model_folder import ModelFolder

    return (path / "config.json").exists() and ModelFolder(path).has("denoiser")


def model_env_id(path: Path) -> str | None:
    from neuralgym.model_folder import ModelFolder

    return ModelFolder(path).read_config().get("env_id")
