"""Game specs: metadata layout, batched rules, and the Genesis specs against the integration
files that ship inside stable-retro (no ROM needed for any of these)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import stable_retro

from neuralgym import GAMES, games, make_real
from neuralgym.games import AIRSTRIKER, BREAKOUT, DEMON_ATTACK, PONG, SONIC, GameSpec, MetaVar
from neuralgym.games.genesis import SONIC_LEVEL_MAX_X

SPECS = list(GAMES.values())
GENESIS_SPECS = [s for s in SPECS if s.backend == "retro"]
# The buttons of stable-retro's Genesis core (genesis_plus_gx), in its order.
GENESIS_BUTTONS = ("B", "A", "MODE", "START", "UP", "DOWN", "LEFT", "RIGHT", "C", "Y", "X", "Z")


def ids(specs: list[GameSpec]) -> list[str]:
    return [s.env_id for s in specs]


def vec(spec: GameSpec, **values: float) -> np.ndarray:
    """A metadata vector (M,) in spec.fields order: zeros except the named values."""
    names = spec.metadata_names
    out = np.zeros(len(names), np.float32)
    for name, value in values.items():
        out[names.index(name)] = value
    return out


def integration_file(spec: GameSpec, name: str) -> Path:
    path = stable_retro.data.get_file_path(spec.game, name)
    assert path is not None, f"{spec.game}: stable-retro ships no {name}"
    return Path(path)


def random_metadata(spec: GameSpec, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Plausible metadata: small integers, so that lives/scores/flags take meaningful values."""
    meta = rng.integers(0, 4, (*shape, len(spec.metadata))).astype(np.float32)
    if "gameover" in spec.metadata_names:  # make Airstriker's game over (1, 0 lives) frequent
        meta[..., spec.metadata_names.index("gameover")] = rng.integers(0, 2, shape)
    return meta


# -- every spec ------------------------------------------------------------------------------


def test_known_games() -> None:
    assert set(GAMES) == {
        "NeuralBreakout-v0", "NeuralPong-v0", "NeuralDemonAttack-v0", "NeuralAirstriker-v0",
        "NeuralSonic-v0",
    }
    for env_id, spec in GAMES.items():
        assert spec.env_id == env_id


@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_metadata_names_and_info_keys(spec: GameSpec) -> None:
    names = spec.metadata_names
    assert len(names) == len(set(names)) > 0
    assert "metadata" not in names
    assert spec.info_keys == (*names, "metadata")
    assert all(v.kind in ("continuous", "categorical") for v in spec.metadata)
    assert spec.n_actions == len(spec.action_names) == len(set(spec.action_names))
    assert spec.obs_shape[2] == 3 and spec.max_episode_steps > 0 and spec.frameskip == 4

    meta = np.arange(len(names), dtype=np.float64) + 0.5
    info = spec.info(meta)
    assert tuple(info) == spec.info_keys
    assert info["metadata"].dtype == np.float32 and info["metadata"].shape == (len(names),)
    for i, name in enumerate(names):
        assert info[name] == pytest.approx(meta[i])


@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_rules_on_batch_and_vector(spec: GameSpec) -> None:
    rng = np.random.default_rng(0)
    B, M = 64, len(spec.metadata)
    prev, cur = random_metadata(spec, rng, (B,)), random_metadata(spec, rng, (B,))

    fields = spec.fields(cur)
    assert list(fields) == list(spec.metadata_names)
    for i, name in enumerate(spec.metadata_names):
        np.testing.assert_array_equal(fields[name], cur[:, i])
    one = spec.fields(cur[3])
    assert all(np.shape(v) == () for v in one.values())
    assert [float(v) for v in one.values()] == list(cur[3])

    rewards, terms = spec.rewards(prev, cur), spec.terminations(prev, cur)
    assert rewards.shape == (B,) and rewards.dtype == np.float32
    assert terms.shape == (B,) and terms.dtype == bool
    for b in range(B):  # the batch agrees with one vector at a time
        r, t = spec.rewards(prev[b], cur[b]), spec.terminations(prev[b], cur[b])
        assert r.shape == () and r.dtype == np.float32 and t.shape == () and t.dtype == bool
        assert r == rewards[b] and t == terms[b]
    # (..., M): a batch of sequences as well
    np.testing.assert_array_equal(
        spec.rewards(prev.reshape(8, 8, M), cur.reshape(8, 8, M)), rewards.reshape(8, 8))
    np.testing.assert_array_equal(
        spec.terminations(prev.reshape(8, 8, M), cur.reshape(8, 8, M)), terms.reshape(8, 8))
    # nothing changes: no reward
    np.testing.assert_array_equal(spec.rewards(cur, cur), np.zeros(B, np.float32))


@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_wrong_length_metadata_raises(spec: GameSpec) -> None:
    M = len(spec.metadata)
    for bad in (np.zeros(M + 1), np.zeros(M - 1), np.zeros((5, M + 2))):
        with pytest.raises(ValueError, match=rf"expected {M} \("):
            spec.fields(bad)
        with pytest.raises(ValueError, match=spec.env_id):
            spec.rewards(bad, bad)
        with pytest.raises(ValueError, match=spec.env_id):
            spec.terminations(bad, bad)
    with pytest.raises(ValueError):
        spec.rewards(np.zeros(M), np.zeros(M + 1))


# -- Atari rules -----------------------------------------------------------------------------


def test_atari_rules() -> None:
    b = BREAKOUT
    assert b.rewards(vec(b, score=12, lives=5), vec(b, score=19, lives=5)) == 7
    assert not b.terminations(vec(b, lives=2), vec(b, lives=1))
    assert b.terminations(vec(b, lives=1), vec(b, lives=0))

    p = PONG
    assert p.rewards(vec(p, player_score=3, enemy_score=5), vec(p, player_score=4,
                                                              enemy_score=5)) == 1
    assert p.rewards(vec(p, player_score=3, enemy_score=5), vec(p, player_score=3,
                                                              enemy_score=6)) == -1
    assert not p.terminations(vec(p), vec(p, player_score=20, enemy_score=20))
    assert p.terminations(vec(p), vec(p, player_score=21, enemy_score=3))
    assert p.terminations(vec(p), vec(p, player_score=3, enemy_score=21))

    d = DEMON_ATTACK
    assert d.rewards(vec(d, score=30), vec(d, score=65)) == 35
    assert d.terminations(vec(d), vec(d, num_lives=0, display_flag=0xBD))
    assert not d.terminations(vec(d), vec(d, num_lives=0, display_flag=0))  # at reset
    assert not d.terminations(vec(d), vec(d, num_lives=1, display_flag=0xBD))


@pytest.mark.parametrize("spec", [BREAKOUT, PONG, DEMON_ATTACK], ids=lambda s: s.env_id)
def test_step_limits_hold_in_the_real_game(spec: GameSpec) -> None:
    """The per-step bounds the dream holds g_phi to are the real game's: 3,000 steps of
    uniform random play (episodes reset as they end) never cross them; nor do the values
    leave the class range the spec declares (`MetaVar.values`)."""
    limits = spec.step_limits()
    assert limits is not None and limits.shape == (2, len(spec.metadata))
    scored = [i for i, v in enumerate(spec.metadata) if "score" in v.name]
    assert scored and (limits[0, scored] == 0).all()  # no score goes down
    env = make_real(spec.env_id)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    prev, changes, seen = info["metadata"], [], [info["metadata"]]
    for _ in range(3000):
        _, _, term, trunc, info = env.step(int(rng.integers(spec.n_actions)))
        changes.append(info["metadata"] - prev)
        seen.append(info["metadata"])
        prev = info["metadata"]
        if term or trunc:
            _, info = env.reset()
            prev = info["metadata"]
    env.close()
    d = np.array(changes)  # (steps, M)
    assert (d >= limits[0]).all() and (d <= limits[1]).all()
    assert (d[:, scored] > 0).any()  # the bounded variables did move
    values = np.array(seen)  # (steps + resets, M)
    for i, n in enumerate(spec.class_counts()):
        if n:
            assert values[:, i].min() >= 0 and values[:, i].max() < n, spec.metadata_names[i]


def test_class_counts() -> None:
    """The categorical values a game can take: Pong's scores 0..21, Breakout's lives 0..5;
    0 where the spec does not say; the lookup by env id checks the names."""
    assert PONG.class_counts()[PONG.metadata_names.index("player_score")] == 22
    assert BREAKOUT.class_counts()[BREAKOUT.metadata_names.index("lives")] == 6
    assert BREAKOUT.class_counts()[BREAKOUT.metadata_names.index("ball_x")] == 0
    assert games.class_counts("NeuralPong-v0", PONG.metadata_names) == PONG.class_counts()
    assert games.class_counts("NeuralPong-v0", ("x",)) is None
    assert games.class_counts("NoSuchGame-v0", PONG.metadata_names) is None


def test_step_limits() -> None:
    lo, hi = PONG.step_limits()
    i = PONG.metadata_names.index("enemy_score")
    assert (lo[i], hi[i]) == (0, 1)
    assert np.isinf(lo[0]) and np.isinf(hi[0])  # player_y: unbounded
    assert BREAKOUT.step_limits()[:, BREAKOUT.metadata_names.index("lives")].tolist() \
        == [-np.inf, 0]
    assert SONIC.step_limits() is None


def test_atari_score_readers_decode_ram() -> None:
    ram = np.zeros(128, np.uint8)
    breakout_score = BREAKOUT.metadata[BREAKOUT.metadata_names.index("score")]
    ram[77], ram[76] = 0x42, 0x03
    assert breakout_score.read(ram) == 342

    demon_score = DEMON_ATTACK.metadata[DEMON_ATTACK.metadata_names.index("score")]
    ram[:] = 0
    ram[1], ram[3], ram[5] = 0x01, 0x23, 0x45
    assert demon_score.read(ram) == 12345
    # At reset the RAM holds the non-decimal 0xABCDEA; the ALE's score there is 0.
    ram[1], ram[3], ram[5] = 0xAB, 0xCD, 0xEA
    assert demon_score.read(ram) == 0


# -- Genesis specs ---------------------------------------------------------------------------


def test_stable_retro_genesis_buttons() -> None:
    assert tuple(stable_retro.get_system_info("Genesis")["buttons"]) == GENESIS_BUTTONS


@pytest.mark.parametrize("spec", GENESIS_SPECS, ids=ids(GENESIS_SPECS))
def test_genesis_buttons(spec: GameSpec) -> None:
    assert len(spec.buttons) == len(spec.action_names)
    assert len(set(map(frozenset, spec.buttons))) == len(spec.buttons)  # no duplicate combos
    for combo in spec.buttons:
        assert len(set(combo)) == len(combo)
        for button in combo:
            assert button in GENESIS_BUTTONS, f"{spec.env_id}: {button!r} is no Genesis button"
    assert spec.buttons[spec.action_names.index("NOOP")] == ()


def test_airstriker_has_no_start() -> None:  # START pauses the game
    assert all("START" not in combo for combo in AIRSTRIKER.buttons)
    assert all("MODE" not in combo for combo in AIRSTRIKER.buttons)


@pytest.mark.parametrize("spec", GENESIS_SPECS, ids=ids(GENESIS_SPECS))
def test_genesis_spec_matches_integration(spec: GameSpec) -> None:
    data = json.loads(integration_file(spec, "data.json").read_text())
    variables = set(data["info"])
    assert variables, f"{spec.game}: empty data.json"
    assert variables <= set(spec.metadata_names), variables - set(spec.metadata_names)
    # metadata beyond data.json must come from the spec's extra RAM variables
    extra = set(spec.metadata_names) - variables
    assert extra == set(spec.extra_variables)
    system = stable_retro.get_system_info("Genesis")
    for name, var in spec.extra_variables.items():
        assert name not in variables
        assert var["type"] in system["types"]
        assert int(var["address"]) >= system["rambase"]  # type: ignore[call-overload]

    metadata = json.loads(integration_file(spec, "metadata.json").read_text())
    assert spec.default_state == metadata["default_state"]
    assert spec.default_state in spec.states

    scenario = integration_file(spec, f"{spec.scenario}.json")
    assert scenario.is_file()
    json.loads(scenario.read_text())


def test_airstriker_states_are_the_shipped_ones() -> None:
    assert set(AIRSTRIKER.states) == set(stable_retro.data.list_states(AIRSTRIKER.game))
    assert AIRSTRIKER.states == ("Level1",)


# -- Sonic against its integration -----------------------------------------------------------


def sonic_lua() -> str:
    return integration_file(SONIC, "script.lua").read_text()


def parse_level_max_x(lua: str) -> tuple[dict[tuple[int, int], int], dict[str, int]]:
    """script.lua's level_max_x -> {(zone, act): end x}, and zone name -> zone number
    (from the section comments, e.g. "-- Green Hill Zone")."""
    table = re.search(r"level_max_x\s*=\s*\{(.*?)\n\}", lua, re.S)
    assert table, "no level_max_x table in script.lua"
    ends: dict[tuple[int, int], int] = {}
    zones: dict[str, int] = {}
    section = None
    for line in table.group(1).splitlines():
        heading = re.fullmatch(r"\s*--\s*([A-Za-z ]+ Zone)\s*", line)
        if heading:
            section = heading.group(1).replace(" ", "")
            continue
        code = line.split("--", 1)[0]  # drop comments (ScrapBrainZone act 3 is commented out)
        m = re.search(r'\["zone=(\d+),act=(\d+)"\]\s*=\s*(0x[0-9A-Fa-f]+|\d+)', code)
        if m:
            zone, act = int(m.group(1)), int(m.group(2))
            ends[(zone, act)] = int(m.group(3), 0)
            assert section is not None
            assert zones.setdefault(section, zone) == zone
    return ends, zones


def test_sonic_level_max_x_matches_script_lua() -> None:
    ends, zones = parse_level_max_x(sonic_lua())
    assert len(ends) == 17 and (5, 2) not in ends
    assert SONIC_LEVEL_MAX_X == ends
    assert zones == {"GreenHillZone": 0, "MarbleZone": 2, "SpringYardZone": 4,
                     "LabyrinthZone": 1, "StarLightZone": 3, "ScrapBrainZone": 5}


def test_sonic_states_are_the_shipped_ones_with_an_end_x() -> None:
    shipped = {p.name[: -len(".state")] for p in integration_file(SONIC, "data.json").parent.
               glob("*.state")}
    assert shipped == set(stable_retro.data.list_states(SONIC.game))
    assert len(SONIC.states) == len(set(SONIC.states)) == 17
    assert "ScrapBrainZone.Act3" not in SONIC.states
    assert set(SONIC.states) == shipped - {"ScrapBrainZone.Act3"}
    # every start state's act has an end x in script.lua
    _, zones = parse_level_max_x(sonic_lua())
    for state in SONIC.states:
        zone, act = re.fullmatch(r"(\w+)\.Act(\d)", state).groups()  # type: ignore[union-attr]
        assert (zones[zone], int(act) - 1) in SONIC_LEVEL_MAX_X, state


def test_sonic_scenario_is_xpos() -> None:
    assert SONIC.scenario == "xpos"
    xpos = json.loads(integration_file(SONIC, "xpos.json").read_text())
    assert xpos["reward"]["script"] == "lua:xpos_rew"
    assert xpos["done"]["script"] == "lua:xpos_done"
    lua = sonic_lua()
    assert re.search(r"function xpos_rew\(\).*?data\.x - data\.xpos_last_x", lua, re.S)
    assert re.search(r"function xpos_done\(\).*?data\.lives < data\.prev_lives.*?"
                     r"data\.x > level_max_x\[level_key\(\)\]", lua, re.S)
    # xpos_done's frame limit is the registration's time limit (steps of `frameskip` frames)
    frame_limit = int(re.search(r"frame_limit\s*=\s*(\d+)", lua).group(1))  # type: ignore[union-attr]
    assert SONIC.max_episode_steps * SONIC.frameskip == frame_limit


def test_sonic_reward_is_x_delta() -> None:
    s = SONIC
    base = dict(y=300, lives=3, zone=0, act=0, rings=5, score=100, screen_x=50)
    assert s.rewards(vec(s, x=100, **base), vec(s, x=130, **base)) == 30
    assert s.rewards(vec(s, x=100, **base), vec(s, x=80, **base)) == -20
    # rings, score and camera do not pay
    assert s.rewards(vec(s, x=100, **base), vec(s, x=100, **{**base, "rings": 50,
                                                             "score": 900, "screen_x": 80})) == 0
    # x is >i2: negative positions work
    assert s.rewards(vec(s, x=-10, **base), vec(s, x=5, **base)) == 15


def test_sonic_terminates_on_a_lost_life() -> None:
    s = SONIC
    at = dict(x=500, zone=0, act=0)
    assert s.terminations(vec(s, lives=3, **at), vec(s, lives=2, **at))
    assert s.terminations(vec(s, lives=1, **at), vec(s, lives=0, **at))
    assert not s.terminations(vec(s, lives=3, **at), vec(s, lives=3, **at))
    assert not s.terminations(vec(s, lives=3, **at), vec(s, lives=4, **at))  # a 1-up


def test_sonic_terminates_past_the_end_of_the_act() -> None:
    s = SONIC
    keys = sorted(SONIC_LEVEL_MAX_X)
    prev, at_end, past_end = [], [], []
    for zone, act in keys:
        end = SONIC_LEVEL_MAX_X[(zone, act)]
        common = dict(lives=3, zone=zone, act=act)
        prev.append(vec(s, x=end - 10, **common))
        at_end.append(vec(s, x=end, **common))  # script.lua: data.x > level_max_x
        past_end.append(vec(s, x=end + 1, **common))
    prev_b, at_end_b, past_end_b = map(np.stack, (prev, at_end, past_end))
    assert not s.terminations(prev_b, at_end_b).any()
    assert s.terminations(prev_b, past_end_b).all()
    for i in range(len(keys)):
        assert not s.terminations(prev[i], at_end[i])
        assert s.terminations(prev[i], past_end[i])
    # the end x is per act: the end of Labyrinth act 2 (0x1150) is not the end of GHZ act 1
    x = SONIC_LEVEL_MAX_X[(1, 1)] + 1
    assert s.terminations(vec(s, lives=3), vec(s, x=x, lives=3, zone=1, act=1))
    assert not s.terminations(vec(s, lives=3), vec(s, x=x, lives=3, zone=0, act=0))
    # Scrap Brain act 3 has no end x: never ends by position
    assert not s.terminations(vec(s, lives=3), vec(s, x=30_000, lives=3, zone=5, act=2))
    # a batch mixing acts with and without an end x (an act the dream may predict), any order
    mixed = np.stack([vec(s, x=x, lives=3, zone=1, act=1), vec(s, x=x, lives=3, zone=5, act=2),
                      vec(s, x=x, lives=3, zone=9, act=0)])
    np.testing.assert_array_equal(s.terminations(mixed, mixed), [True, False, False])
    np.testing.assert_array_equal(s.terminations(mixed[::-1], mixed[::-1]), [False, False, True])
    assert s.terminations(mixed[:0], mixed[:0]).shape == (0,)
    # both reasons at once
    assert s.terminations(vec(s, lives=3), vec(s, x=x, lives=2, zone=1, act=1))


def test_screen_positions() -> None:
    assert PONG.screen_positions() == (
        (0, "y", -6.5), (4, "x", -48.5), (5, "y", -12.5))
    assert BREAKOUT.screen_positions() == ()
    with pytest.raises(ValueError, match="screen must be"):
        MetaVar("v", float, screen=("z", 1.0))  # type: ignore[arg-type]
