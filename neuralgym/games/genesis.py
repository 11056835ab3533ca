"""Sega Genesis games on stable-retro: Airstriker-Genesis (ships with stable-retro) and
Sonic the Hedgehog (users import their own ROM).

Both run the same code path: stable-retro with all buttons allowed, a discrete action set of
button combos, frameskip 4 (the action is held for 4 emulator frames), native 224x320 RGB.
Metadata are the integration's data.json variables plus RAM variables neuralgym adds through
an extra `info` file (see `extra_variables`).
"""

from __future__ import annotations

import numpy as np

from neuralgym.games.spec import GameSpec, MetaVar


def _var(name: str, kind: str = "continuous", doc: str = "",
         step: tuple[float | None, float | None] | None = None) -> MetaVar:
    """A metadata variable read from stable-retro's variables dict by name."""
    return MetaVar(name=name, read=lambda v: float(v[name]), kind=kind,  # type: ignore[arg-type]
                   doc=doc, step=step)


AIRSTRIKER = GameSpec(
    env_id="NeuralAirstriker-v0",
    backend="retro",
    game="Airstriker-Genesis-v0",
    obs_shape=(224, 320, 3),
    # START pauses the game, so it is left out. B fires; the ship moves only left and right.
    action_names=("NOOP", "LEFT", "RIGHT", "FIRE", "LEFT_FIRE", "RIGHT_FIRE"),
    buttons=((), ("LEFT",), ("RIGHT",), ("B",), ("LEFT", "B"), ("RIGHT", "B")),
    metadata=(
        _var("score", doc="data.json score (>u4)", step=(0.0, None)),  # never goes down
        _var("lives", "categorical", "data.json lives"),
        _var("gameover", "categorical", "data.json gameover (1 at game over)"),
        _var("player_x", doc="ship x position, RAM 0xFF0268 (>u2), found by neuralgym"),
    ),
    extra_variables={"player_x": {"address": 0xFF0268, "type": ">u2"}},
    # scenario.json: reward = score delta; done when gameover == 1 and lives == 0.
    reward=lambda p, c: c["score"] - p["score"],
    terminated=lambda p, c: (c["gameover"] == 1) & (c["lives"] == 0),
    max_episode_steps=4_500,
    default_state="Level1",
    states=("Level1",),
)

# Right end of each act (script.lua's level_max_x), by (zone, act).
SONIC_LEVEL_MAX_X = {
    (0, 0): 0x2560, (0, 1): 0x1F60, (0, 2): 0x292A,  # Green Hill
    (2, 0): 0x1860, (2, 1): 0x1860, (2, 2): 0x1720,  # Marble
    (4, 0): 0x2360, (4, 1): 0x2960, (4, 2): 0x2B83,  # Spring Yard
    (1, 0): 0x1A50, (1, 1): 0x1150, (1, 2): 0x1CC4,  # Labyrinth
    (3, 0): 0x2060, (3, 1): 0x2060, (3, 2): 0x1F48,  # Star Light
    (5, 0): 0x2260, (5, 1): 0x1EE0,  # Scrap Brain (act 3 has no end x)
}


def _sonic_level_end(c: dict[str, np.ndarray]) -> np.ndarray:
    zone = np.asarray(c["zone"]).astype(int)
    act = np.asarray(c["act"]).astype(int)
    # otypes=[float]: else the output type follows the first element, and an act without an
    # end x (np.inf) after one with an end x (an int) raises OverflowError.
    end = np.vectorize(lambda z, a: SONIC_LEVEL_MAX_X.get((int(z), int(a)), np.inf),
                       otypes=[float])(zone, act)
    return np.asarray(c["x"]) > end


SONIC = GameSpec(
    env_id="NeuralSonic-v0",
    backend="retro",
    game="SonicTheHedgehog-Genesis-v0",
    obs_shape=(224, 320, 3),
    # The discrete set of the well-known Sonic RL setups, plus NOOP and jumps with a direction.
    action_names=(
        "NOOP", "LEFT", "RIGHT", "LEFT_DOWN", "RIGHT_DOWN", "DOWN", "DOWN_JUMP", "JUMP",
        "RIGHT_JUMP", "LEFT_JUMP",
    ),
    buttons=(
        (), ("LEFT",), ("RIGHT",), ("LEFT", "DOWN"), ("RIGHT", "DOWN"), ("DOWN",), ("DOWN", "B"),
        ("B",), ("RIGHT", "B"), ("LEFT", "B"),
    ),
    metadata=(
        _var("x", doc="data.json x (>i2), Sonic's position in the level"),
        _var("y", doc="data.json y"),
        _var("screen_x", doc="data.json screen_x (camera)"),
        _var("screen_y", doc="data.json screen_y (camera)"),
        _var("screen_x_end", doc="data.json screen_x_end"),
        _var("rings", doc="data.json rings"),
        _var("lives", "categorical", "data.json lives"),
        _var("score", doc="data.json score"),
        _var("level_end_bonus", doc="data.json level_end_bonus"),
        _var("zone", "categorical", "data.json zone"),
        _var("act", "categorical", "data.json act"),
    ),
    # xpos.json (script.lua xpos_rew / xpos_done): reward = progress to the right (x delta);
    # done on a lost life or past the act's right end. Its 18,000-frame limit is the
    # registration's max_episode_steps (4,500 steps at frameskip 4), i.e. a truncation.
    reward=lambda p, c: c["x"] - p["x"],
    terminated=lambda p, c: (c["lives"] < p["lives"]) | _sonic_level_end(c),
    max_episode_steps=4_500,
    scenario="xpos",
    default_state="GreenHillZone.Act1",
    states=tuple(
        f"{zone}.Act{act}"
        for zone in ("GreenHillZone", "MarbleZone", "SpringYardZone", "LabyrinthZone",
                     "StarLightZone")
        for act in (1, 2, 3)
    )
    + ("ScrapBrainZone.Act1", "ScrapBrainZone.Act2"),
    rom_help=(
        "Sonic the Hedgehog's ROM is not redistributable: import your own copy into "
        "stable-retro with `python3 -m stable_retro.import DIR` (DIR holds the .md/.bin ROM; "
        "stable-retro checks it against the integration's rom.sha)."
    ),
)

GENESIS_GAMES = (AIRSTRIKER, SONIC)
