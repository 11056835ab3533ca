"""What a game is to neuralgym: its real env, its actions, its metadata and its rules.

A `GameSpec` is the single description that both the real env (`neuralgym.make_real`) and the
dream env read, so that observation space, action space, `info` keys, rewards and episode
ends mean the same thing in both. Rewards and terminations are functions of
(previous metadata, metadata) only: the real env applies them to metadata read from the
emulator, the dream applies them to predicted metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# A view of a metadata vector (or a batch of them) by variable name: name -> (...) array.
Fields = Mapping[str, np.ndarray]
Rule = Callable[[Fields, Fields], np.ndarray]


@dataclass(frozen=True)
class MetaVar:
    """One game variable recorded beside every frame.

    `read` takes what the backend exposes after a step: the 128-byte RAM (ALE) or the dict of
    the integration's variables (stable-retro, `env.data.lookup_all()`), and returns a number.
    `kind` tells the metadata predictor whether to regress it or classify it.
    `step`: (lo, hi), where the game's own rules bound the change of the variable from one env
    step to the next within an episode (a score never goes down; Pong's goes up by at most one
    point a step); None on a side: unbounded there. The dream holds g_phi's predictions to it
    (`GameSpec.step_limits`), so that a drifting prediction cannot hand out rewards the game
    never gives (an opponent's score counting down pays +1 a step).
    `values`: for a categorical variable, n where the game's values are 0 .. n-1 (Pong's scores:
    22); g_phi then gets n classes even when its data never reached the top values (random play
    rarely scores), instead of one per value seen. None: the data's values decide.
    `screen`: where the variable is an object's position on the screen, its axis ("x": column,
    "y": row) and offset (the object's centre is at pixel value + offset), as measured on the
    real game's frames; the denoiser's position maps draw a stripe there
    (`DenoiserConfig.position_maps`). None: not a position.
    """

    name: str
    read: Callable[[object], float]
    kind: Literal["continuous", "categorical"] = "continuous"
    doc: str = ""
    step: tuple[float | None, float | None] | None = None
    values: int | None = None
    screen: tuple[Literal["x", "y"], float] | None = None

    def __post_init__(self) -> None:
        if self.screen is not None and (len(self.screen) != 2
                                        or self.screen[0] not in ("x", "y")):
            raise ValueError(f"MetaVar {self.name}: screen must be ('x' or 'y', offset), "
                             f"got {self.screen!r}")


@dataclass(frozen=True)
class GameSpec:
    """A game: the real env behind a Neural id and the rules the dream shares with it."""

    env_id: str  # e.g. "NeuralBreakout-v0"
    backend: Literal["ale", "retro"]
    game: str  # ALE game name ("breakout") or stable-retro game id ("Airstriker-Genesis-v0")
    obs_shape: tuple[int, int, int]  # (H, W, 3) native resolution
    action_names: tuple[str, ...]  # Discrete(len(action_names)); index -> meaning
    metadata: tuple[MetaVar, ...]
    reward: Rule  # (prev, cur) -> reward, same shape as a field
    terminated: Rule  # (prev, cur) -> bool array
    max_episode_steps: int
    frameskip: int = 4
    # stable-retro only: button combos per action, start state, scenario and extra variables.
    buttons: tuple[tuple[str, ...], ...] = ()
    default_state: str = ""
    states: tuple[str, ...] = ()
    scenario: str = "scenario"
    extra_variables: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    rom_help: str = ""

    @property
    def metadata_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.metadata)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @property
    def info_keys(self) -> tuple[str, ...]:
        """Keys of `info` from reset/step, identical in the real and the dream env."""
        return (*self.metadata_names, "metadata")

    def fields(self, metadata: np.ndarray) -> dict[str, np.ndarray]:
        """View a metadata array (..., M) by name: name -> (...)."""
        metadata = np.asarray(metadata)
        if metadata.shape[-1] != len(self.metadata):
            raise ValueError(
                f"{self.env_id}: metadata has {metadata.shape[-1]} values, expected "
                f"{len(self.metadata)} ({', '.join(self.metadata_names)})"
            )
        return {name: metadata[..., i] for i, name in enumerate(self.metadata_names)}

    def screen_positions(self) -> tuple[tuple[int, str, float], ...]:
        """(metadata index, axis, pixel offset) of every variable that is an object's position
        on the screen (`MetaVar.screen`), in metadata order."""
        return tuple((i, v.screen[0], float(v.screen[1]))
                     for i, v in enumerate(self.metadata) if v.screen is not None)

    def step_limits(self) -> np.ndarray | None:
        """(2, M) float64: the least and the greatest change of each variable in one env step
        (-inf / +inf where the game sets no bound); None when no variable has a bound."""
        if all(v.step is None for v in self.metadata):
            return None
        limits = np.empty((2, len(self.metadata)))
        for i, v in enumerate(self.metadata):
            lo, hi = v.step or (None, None)
            limits[0, i] = -np.inf if lo is None else lo
            limits[1, i] = np.inf if hi is None else hi
        return limits

    def class_counts(self) -> tuple[int, ...]:
        """Per variable: `MetaVar.values` (the game's categorical values 0 .. n-1), 0 where the
        spec does not say."""
        return tuple(v.values or 0 for v in self.metadata)

    def rewards(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Reward of moving from metadata `prev` to `cur`, (..., M) -> (...) float32."""
        return np.asarray(self.reward(self.fields(prev), self.fields(cur)), dtype=np.float32)

    def terminations(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Whether the episode ends on moving from `prev` to `cur`, (..., M) -> (...) bool."""
        return np.asarray(self.terminated(self.fields(prev), self.fields(cur)), dtype=bool)

    def info(self, metadata: np.ndarray) -> dict[str, object]:
        """The `info` dict for one metadata vector (M,): each variable by name, and the vector."""
        metadata = np.asarray(metadata, dtype=np.float32)
        info: dict[str, object] = {n: float(metadata[i]) for i, n in enumerate(self.metadata_names)}
        info["metadata"] = metadata
        return info

    def check_action(self, action: object) -> int:
        """Return `action` as an int, or raise a ValueError that says what the actions are."""
        try:
            a = int(np.asarray(action).item())
            ok = a == np.asarray(action).item() and 0 <= a < self.n_actions
        except (TypeError, ValueError):
            ok = False
        if not ok:
            meanings = ", ".join(f"{i}={n}" for i, n in enumerate(self.action_names))
            raise ValueError(
                f"{self.env_id}: invalid action {action!r}; the action space is "
                f"Discrete({self.n_actions}): {meanings}"
            )
        return a
