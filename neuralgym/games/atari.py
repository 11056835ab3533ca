"""Atari games on the ALE (ROMs ship with ale-py): Breakout, Pong, DemonAttack.

Settings: ALE v5 dynamics, frameskip 4, no sticky actions (repeat_action_probability 0),
the minimal action set, native 210x160 RGB frames. Metadata are RAM bytes as annotated by
AtariARI (atariari/benchmark/ram_annotations.py), plus score and lives decoded from RAM the
way the ALE itself computes reward and game over, so the spec's rules reproduce the ALE's.
"""

from __future__ import annotations

import numpy as np

from neuralgym.games.spec import GameSpec, MetaVar


def _ram(name: str, index: int, doc: str, kind: str = "continuous",
         step: tuple[float | None, float | None] | None = None,
         values: int | None = None, screen: tuple[str, float] | None = None) -> MetaVar:
    """A metadata variable that is one RAM byte (index 0..127 into the 128-byte RAM)."""
    return MetaVar(name, lambda ram: float(ram[index]), kind, doc, step,  # type: ignore[arg-type]
                   values, screen)  # type: ignore[arg-type]


# per-step bounds (MetaVar.step) that the ALE's rules set within an episode
NEVER_DOWN = (0.0, None)  # a score
NEVER_UP = (None, 0.0)  # Breakout's lives (DemonAttack's can come back)
POINT_A_STEP = (0.0, 1.0)  # Pong's scores: one rally ends at most every step
PONG_SCORES = 22  # MetaVar.values: a game of Pong ends when one side reaches 21


def _bcd(byte: int) -> int:
    """Two binary-coded decimal digits in one byte -> 0..99."""
    return 10 * ((byte >> 4) & 0xF) + (byte & 0xF)


def _breakout_score(ram: np.ndarray) -> float:
    # ALE Breakout: units/tens in RAM 77 (BCD), hundreds in the low nibble of RAM 76.
    return float(_bcd(int(ram[77])) + 100 * (int(ram[76]) & 0xF))


def _demon_attack_score(ram: np.ndarray) -> float:
    # ALE DemonAttack: getDecimalScore(0x85, 0x83, 0x81) -> RAM 5 (lowest), 3, 1 (highest).
    # Before the first frame of play (i.e. at reset) the RAM holds the non-decimal 0xABCDEA;
    # the ALE counts the score from 0 there, so a byte that is not BCD reads as score 0.
    if any((int(ram[i]) & 0xF) > 9 or (int(ram[i]) >> 4) > 9 for i in (1, 3, 5)):
        return 0.0
    return float(_bcd(int(ram[5])) + 100 * _bcd(int(ram[3])) + 10000 * _bcd(int(ram[1])))


def _demon_attack_x(byte: int) -> int:
    """The screen column of an object's left edge from a DemonAttack position byte (the player
    RAM 16, the enemy shots RAM 20): the low nibble counts 15-pixel steps of the horizontal
    reset, the high nibble is the HMOVE fine adjustment (signed, a positive one moves left).
    Matches the player's leftmost pixel in the real game's frames (tests/test_real_env.py)."""
    fine = byte >> 4
    return 15 * (byte & 0xF) + 12 - (fine - 16 if fine >= 8 else fine)


DEMON_ATTACK_SHOT_ROWS = 37  # RAM 37..46: the enemy shots, one byte per 8-line band, 37 lowest
DEMON_ATTACK_FAR = 40.0  # bullet_dx's reading for no shot in the band, and its clamp


def _demon_attack_bullet_dx(band: int) -> MetaVar:
    """The column of the enemy shot in `band` (0: the 8 lines at the player's feet, 1: the 8
    above, ...) nearest the player's centre, less that centre, clamped to +-DEMON_ATTACK_FAR;
    DEMON_ATTACK_FAR where the band holds none. A band's byte is a bitmap of 8 columns (the
    most significant bit leftmost) from the shots' position byte, RAM 20."""

    def read(ram: np.ndarray) -> float:
        row = int(ram[DEMON_ATTACK_SHOT_ROWS + band])
        if not row:
            return DEMON_ATTACK_FAR
        left = _demon_attack_x(int(ram[20]))
        centre = _demon_attack_x(int(ram[16])) + 3  # the player is 7 pixels wide
        dx = min((left + i - centre for i in range(8) if row & (0x80 >> i)), key=abs)
        return float(np.clip(dx, -DEMON_ATTACK_FAR, DEMON_ATTACK_FAR))

    return MetaVar(f"bullet_dx{band}", read, "continuous",
                   f"enemy shot nearest the player in band {band} above its feet: column less "
                   f"the player's centre (RAM {DEMON_ATTACK_SHOT_ROWS + band}, 20, 16; "
                   f"{DEMON_ATTACK_FAR:.0f}: none)")


ATARI_MAX_EPISODE_STEPS = 27_000  # ALE v5: 108,000 frames at frameskip 4

BREAKOUT = GameSpec(
    env_id="NeuralBreakout-v0",
    backend="ale",
    game="breakout",
    obs_shape=(210, 160, 3),
    action_names=("NOOP", "FIRE", "RIGHT", "LEFT"),
    metadata=(
        _ram("ball_x", 99, "AtariARI ball_x"),
        _ram("ball_y", 101, "AtariARI ball_y"),
        _ram("player_x", 72, "AtariARI player_x (paddle)"),
        _ram("blocks_hit_count", 77, "AtariARI blocks_hit_count"),
        MetaVar("score", _breakout_score, "continuous", "ALE score (BCD in RAM 76/77)",
                NEVER_DOWN),
        _ram("lives", 57, "ALE lives (RAM 0x39)", "categorical", NEVER_UP, 6),  # 5 down to 0
    ),
    reward=lambda p, c: c["score"] - p["score"],
    terminated=lambda p, c: c["lives"] == 0,
    max_episode_steps=ATARI_MAX_EPISODE_STEPS,
)

PONG = GameSpec(
    env_id="NeuralPong-v0",
    backend="ale",
    game="pong",
    obs_shape=(210, 160, 3),
    action_names=("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"),
    metadata=(
        # screen offsets: the game's frames against its RAM (benchmarks/pong_frames.py's
        # calibration, the medians of pixel - RAM over real play)
        _ram("player_y", 51, "AtariARI player_y", screen=("y", -6.5)),
        _ram("player_x", 46, "AtariARI player_x"),
        _ram("enemy_y", 50, "AtariARI enemy_y"),
        _ram("enemy_x", 45, "AtariARI enemy_x"),
        _ram("ball_x", 49, "AtariARI ball_x", screen=("x", -48.5)),
        _ram("ball_y", 54, "AtariARI ball_y", screen=("y", -12.5)),
        _ram("enemy_score", 13, "AtariARI enemy_score", "categorical", POINT_A_STEP,
             PONG_SCORES),
        _ram("player_score", 14, "AtariARI player_score", "categorical", POINT_A_STEP,
             PONG_SCORES),
    ),
    reward=lambda p, c: (c["player_score"] - p["player_score"])
    - (c["enemy_score"] - p["enemy_score"]),
    terminated=lambda p, c: (c["player_score"] == 21) | (c["enemy_score"] == 21),
    max_episode_steps=ATARI_MAX_EPISODE_STEPS,
)

DEMON_ATTACK = GameSpec(
    env_id="NeuralDemonAttack-v0",
    backend="ale",
    game="demon_attack",
    obs_shape=(210, 160, 3),
    action_names=("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"),
    metadata=(
        _ram("level", 62, "AtariARI level", "categorical"),
        _ram("player_x", 22, "AtariARI player_x"),
        _ram("enemy_x1", 17, "AtariARI enemy_x1"),
        _ram("enemy_x2", 18, "AtariARI enemy_x2"),
        _ram("enemy_x3", 19, "AtariARI enemy_x3"),
        _ram("missile_y", 21, "AtariARI missile_y"),
        _ram("enemy_y1", 69, "AtariARI enemy_y1"),
        _ram("enemy_y2", 70, "AtariARI enemy_y2"),
        _ram("enemy_y3", 71, "AtariARI enemy_y3"),
        _ram("num_lives", 114, "AtariARI num_lives (ALE lives - 1)", "categorical"),
        _ram("display_flag", 113, "ALE game-over display flag (RAM 0xF1, 0xBD at game over)",
                          "categorical"),
        MetaVar("score", _demon_attack_score, "continuous", "ALE score (BCD in RAM 1/3/5)",
                NEVER_DOWN),
        # not in AtariARI: the player-hit timer. The frame the player is hit, it is set to 63
        # and counts down by one a frame (4 a step) to 0; the screen flashes light grey the
        # step it is set (or the next, where it is set on a step's last frame: 0.28 of the
        # hits of sticky-random play, benchmarks/hit_timer.py) and fades back while it runs.
        # A hit is an MSE of 17,000-48,000 in a frame, so the flash is what a DemonAttack
        # model is judged on.
        _ram("hit_timer", 25, "player-hit timer (RAM 0x99): 63 at a hit, down 1 a frame"),
        # not in AtariARI either: where the enemy shots are beside the player, in the three
        # 8-line bands nearest its feet. Most hits are set within the step whose frame flashes,
        # so what tells them a step ahead is a shot above the player, near its centre.
        *(_demon_attack_bullet_dx(band) for band in range(3)),
    ),
    reward=lambda p, c: c["score"] - p["score"],
    terminated=lambda p, c: (c["num_lives"] == 0) & (c["display_flag"] == 0xBD),
    max_episode_steps=ATARI_MAX_EPISODE_STEPS,
)

ATARI_GAMES = (BREAKOUT, PONG, DEMON_ATTACK)
