"""Play a Neural env (the dream) with the keyboard, in a pygame window.

Usage:

    python -m neuralgym.play NeuralBreakout-v0 --model DIR      # play the dream
    python -m neuralgym.play NeuralBreakout-v0 --model DIR --mirror
                                       # the real game (left) beside the dream (right), same keys
    python -m neuralgym.play NeuralBreakout-v0 --real           # the real game alone, no weights
    python -m neuralgym.play NeuralSonic-v0 --model DIR --scale 2 --record sonic.mp4

Keys: arrows = LEFT/RIGHT/UP/DOWN, space = FIRE / JUMP (B); nothing pressed = NOOP. The key
map is derived from the game's action names ("RIGHTFIRE", "LEFT_FIRE", "DOWN_JUMP", ...): the
action whose buttons equal the pressed set is taken, else the one with the most buttons that
are all pressed. Esc or closing the window quits, R resets, P pauses.

Options: --model DIR, --device, --denoising-steps N are passed to `gymnasium.make` only when
given; --fps (0 = as fast as it runs), --scale (integer zoom), --seed, --max-steps N (stop after
N env steps), --record OUT.mp4 (save what was shown). Headless runs (tests, CI) set
SDL_VIDEODRIVER=dummy and SDL_AUDIODRIVER=dummy.

For code: `KeyMap` turns pressed buttons into an action, `Screen` draws the panes and the
status, and `play_loop(env, keymap, keys, screen, real=...)` runs the game with any key
source, a callable returning the set of pressed button names per frame (plus the commands
"QUIT", "RESET", "PAUSE"), so scripts and tests can play without a keyboard.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import pygame

# Commands a key source may return beside the buttons.
QUIT, RESET, PAUSE = "QUIT", "RESET", "PAUSE"
COMMANDS = frozenset({QUIT, RESET, PAUSE})

# Buttons the action names are made of, longest first so "RIGHTFIRE" splits as RIGHT + FIRE.
KNOWN_BUTTONS = ("RIGHT", "LEFT", "DOWN", "FIRE", "JUMP", "UP", "B", "A", "C")
# pygame key names per button; FIRE, JUMP and B (Genesis jump/fire) share the space bar.
BUTTON_KEYS = {
    "LEFT": "left", "RIGHT": "right", "UP": "up", "DOWN": "down",
    "FIRE": "space", "JUMP": "space", "B": "space",
}
DIRECTIONS = frozenset({"LEFT", "RIGHT", "UP", "DOWN"})
SPARE_KEYS = ("z", "x", "c", "a", "s", "d", "q", "w", "e")  # for buttons of other names

KeySource = Callable[[], Iterable[str]]


def _pygame() -> Any:
    """Import pygame without its banner."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame


def action_buttons(name: str) -> frozenset[str]:
    """The buttons an action name holds: "NOOP" -> {}, "RIGHTFIRE" / "RIGHT_FIRE" -> {RIGHT, FIRE}.

    Names are split on "_" and each part into known button names; a part that is not made of
    known names is one button of its own.
    """
    buttons: set[str] = set()
    for part in name.upper().split("_"):
        if part in ("", "NOOP"):
            continue
        rest, found = part, []
        while rest:
            head = next((b for b in KNOWN_BUTTONS if rest.startswith(b)), None)
            if head is None:
                break
            found.append(head)
            rest = rest[len(head):]
        buttons.update(found if not rest else [part])
    return frozenset(buttons)


@dataclass(frozen=True)
class KeyMap:
    """Keyboard keys -> buttons -> a Discrete action, derived from the action names."""

    action_names: tuple[str, ...]
    buttons: tuple[frozenset[str], ...]  # per action
    keys: dict[str, str]  # button -> pygame key name

    @classmethod
    def from_action_names(cls, action_names: Sequence[str]) -> KeyMap:
        buttons = tuple(action_buttons(n) for n in action_names)
        keys: dict[str, str] = {}
        spare = iter(SPARE_KEYS)
        for b in sorted(set().union(*buttons)):
            keys[b] = BUTTON_KEYS.get(b) or next(spare)
        return cls(tuple(action_names), buttons, keys)

    @property
    def noop(self) -> int:
        """The action with no button (0 if the game has none)."""
        return next((a for a, b in enumerate(self.buttons) if not b), 0)

    def normalise(self, pressed: Iterable[str]) -> frozenset[str]:
        """Pressed button names in this game's vocabulary: FIRE, JUMP and B stand for each
        other when the game has only one of them (they share the space bar)."""
        vocab = set(self.keys)
        out = set()
        for b in pressed:
            b = b.upper()
            if b in COMMANDS:
                continue
            if b not in vocab:
                b = next((k for k in vocab if BUTTON_KEYS.get(k) == BUTTON_KEYS.get(b, "?")), b)
            out.add(b)
        return frozenset(out)

    def action(self, pressed: Iterable[str]) -> int:
        """The action whose buttons equal the pressed set, else the one with the most buttons
        all of which are pressed (ties: more direction buttons, then the lower index, so
        Breakout's RIGHT + FIRE moves right); nothing pressed -> NOOP."""
        held = self.normalise(pressed)
        for a, b in enumerate(self.buttons):
            if b == held:
                return a
        subsets = [(len(b), len(b & DIRECTIONS), -a)
                   for a, b in enumerate(self.buttons) if b <= held]
        return -max(subsets)[2] if subsets else self.noop

    def describe(self) -> str:
        """"space=FIRE, left=LEFT, ..." for the terminal."""
        by_key: dict[str, list[str]] = {}
        for b, k in self.keys.items():
            by_key.setdefault(k, []).append(b)
        return ", ".join(f"{k}={'/'.join(bs)}" for k, bs in sorted(by_key.items()))


def action_names_of(env: gym.Env, env_id: str | None = None) -> tuple[str, ...]:
    """The env's action names: its `unwrapped.game` spec, the ALE's meanings, or the spec of
    `env_id`."""
    game = getattr(env.unwrapped, "game", None)
    if game is not None and hasattr(game, "action_names"):
        return tuple(game.action_names)
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    if callable(meanings):
        return tuple(meanings())
    if env_id is None:
        raise ValueError("cannot tell this env's action names: pass env_id")
    from neuralgym.games import get_spec

    return get_spec(env_id).action_names


# -- key sources -----------------------------------------------------------------------------


class Keyboard:
    """The key source of a person: pygame's pressed keys, plus the keys tapped since the last
    frame (so a short tap is not lost between two frames), and Esc / R / P / window close."""

    def __init__(self, keymap: KeyMap):
        pg = _pygame()
        self._pg = pg
        self._codes = {b: pg.key.key_code(k) for b, k in keymap.keys.items()}
        self._commands = {pg.K_ESCAPE: QUIT, pg.K_r: RESET, pg.K_p: PAUSE}

    def __call__(self) -> set[str]:
        pg, out = self._pg, set()
        for event in pg.event.get():
            if event.type == pg.QUIT:
                out.add(QUIT)
            elif event.type == pg.KEYDOWN:
                if event.key in self._commands:
                    out.add(self._commands[event.key])
                out.update(b for b, c in self._codes.items() if c == event.key)
        pressed = pg.key.get_pressed()
        out.update(b for b, c in self._codes.items() if pressed[c])
        return out


def scripted(presses: Iterable[Iterable[str]]) -> KeySource:
    """A key source that returns the given sets one per frame, then QUIT."""
    it: Iterator[Iterable[str]] = iter(presses)
    return lambda: set(next(it, {QUIT}))


# -- drawing ---------------------------------------------------------------------------------


def compose(panes: Sequence[np.ndarray], scale: int) -> np.ndarray:
    """Frames (H, W, 3) side by side, each scaled by an integer factor (nearest neighbour);
    shorter panes are padded with black at the bottom. -> (max H * scale, sum W * scale, 3)."""
    scaled = [np.repeat(np.repeat(np.asarray(p, np.uint8), scale, 0), scale, 1) for p in panes]
    height = max(p.shape[0] for p in scaled)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0))) for p in scaled]
    return np.concatenate(padded, axis=1)


class Screen:
    """A pygame window: the panes side by side and a status bar under them.

    If pygame has no fonts, the status goes to the terminal once a second instead.
    """

    def __init__(self, title: str, pane_shapes: Sequence[tuple[int, ...]], scale: int = 3,
                 status_lines: int = 4, font_size: int = 18):
        pg = _pygame()
        self._pg = pg
        pg.display.init()
        self.scale = scale
        self.pane_widths = [s[1] * scale for s in pane_shapes]
        self.game_height = max(s[0] for s in pane_shapes) * scale
        try:
            pg.font.init()
            self.font: pygame.font.Font | None = pg.font.Font(None, font_size)
        except (ImportError, NotImplementedError, pg.error):
            self.font = None
        self.line_height = self.font.get_linesize() if self.font else 0
        bar = status_lines * self.line_height + 4 if self.font else 0
        bar += bar % 2  # even sizes, for video encoders
        self.size = (sum(self.pane_widths), self.game_height + bar)
        self.surface = pg.display.set_mode(self.size)
        pg.display.set_caption(title)
        self._last_print = 0.0

    def show(self, panes: Sequence[np.ndarray], lines: Sequence[str] = (),
             pane_lines: Sequence[Sequence[str]] = ()) -> np.ndarray:
        """Draw the frames, the status `lines` across the window and `pane_lines[i]` under pane
        i; returns what is shown, (H, W, 3) uint8."""
        pg = self._pg
        image = compose(panes, self.scale)
        self.surface.fill((0, 0, 0))
        self.surface.blit(pg.surfarray.make_surface(image.swapaxes(0, 1)), (0, 0))
        if self.font is not None:
            y = self.game_height + 2
            for line in lines:
                self._text(line, 4, y, self.size[0] - 8)
                y += self.line_height
            x = 0
            for width, texts in zip(self.pane_widths, pane_lines, strict=False):
                yy = y
                for line in _wrap(texts, self.font, width - 8):
                    if yy + self.line_height > self.size[1]:
                        break
                    self._text(line, x + 4, yy, width - 8)
                    yy += self.line_height
                x += width
        elif time.monotonic() - self._last_print >= 1.0:
            self._last_print = time.monotonic()
            print(" | ".join([*lines, *(" ".join(t) for t in pane_lines)]), flush=True)
        pg.display.flip()
        pg.event.pump()
        return pg.surfarray.array3d(self.surface).swapaxes(0, 1).copy()

    def _text(self, text: str, x: int, y: int, width: int) -> None:
        assert self.font is not None
        rendered = self.font.render(text, True, (230, 230, 230))
        self.surface.blit(rendered, (x, y), area=self._pg.Rect(0, 0, width, self.line_height))

    def close(self) -> None:
        self._pg.display.quit()


def _wrap(words: Sequence[str], font: Any, width: int) -> list[str]:
    """Join `words` into lines no wider than `width` pixels."""
    lines: list[str] = []
    for word in words:
        if lines and font.size(lines[-1] + "  " + word)[0] <= width:
            lines[-1] += "  " + word
        else:
            lines.append(word)
    return lines


def _info_words(info: dict[str, Any]) -> list[str]:
    """The metadata values of an `info` dict as "name=value" words."""
    words = []
    for k, v in info.items():
        if k == "metadata" or not np.isscalar(v) and np.ndim(v) != 0:
            continue
        try:
            words.append(f"{k}={float(v):g}")
        except (TypeError, ValueError):
            continue
    return words


# -- the game loop ---------------------------------------------------------------------------


@dataclass
class PlayResult:
    """What happened in a `play_loop`."""

    steps: int = 0  # env steps taken in all
    frames_shown: int = 0
    actions: list[int] = field(default_factory=list)  # every action sent, in order
    returns: list[float] = field(default_factory=list)  # per episode ended or reset (env's)
    last_shown: np.ndarray | None = None  # the last image shown, (H, W, 3) uint8
    first_shown: np.ndarray | None = None  # the first image shown
    dream_started_from_real: bool | None = None  # mirror: whether reset options were taken


def _frame(env: gym.Env, obs: Any) -> np.ndarray:
    """What to show of an env: its rgb_array render, else the observation."""
    try:
        frame = env.render()
    except (gym.error.Error, NotImplementedError):
        frame = None
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3):
        frame = np.asarray(obs)
    return frame


def dream_context(env: gym.Env) -> int:
    """The number of real frames a dream starts from: `unwrapped.model.context`, else 4."""
    model = getattr(env.unwrapped, "model", None)
    context = getattr(model, "context", None)
    return int(context) if isinstance(context, int | np.integer) and context > 0 else 4


def start_real(real: gym.Env, seed: int | None, length: int, noop: int
               ) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
    """Reset the real game and step `length - 1` NOOPs; -> (obs, info, dream reset options)."""
    obs, info = real.reset(seed=seed)
    frames, metadata = [np.asarray(obs, np.uint8)], [np.asarray(info["metadata"], np.float32)]
    for _ in range(length - 1):
        obs, _, _, _, info = real.step(noop)
        frames.append(np.asarray(obs, np.uint8))
        metadata.append(np.asarray(info["metadata"], np.float32))
    options = {
        "frames": np.stack(frames),  # (L, H, W, 3) uint8
        "metadata": np.stack(metadata),  # (L, M) float32
        "actions": np.full(length - 1, noop, np.int64),  # (L-1,)
    }
    return obs, info, options


def play_loop(
    env: gym.Env,
    keymap: KeyMap,
    keys: KeySource,
    screen: Screen,
    *,
    real: gym.Env | None = None,
    labels: Sequence[str] | None = None,
    seed: int | None = 0,
    fps: float = 15.0,
    max_steps: int | None = None,
    recorder: Callable[[np.ndarray], None] | None = None,
    log: Callable[[str], None] = print,
) -> PlayResult:
    """Run `env` (and, in mirror mode, the `real` game beside it on the same actions) until
    the key source says QUIT or `max_steps` env steps are done.

    Each frame: read the keys, turn the buttons into an action with `keymap`, step the env(s)
    (unless paused), show the frames and the status. An episode that ends is shown once, then
    reset; in mirror mode both games reset together, the dream from the real game's frames.
    """
    result = PlayResult()
    envs = [real, env] if real is not None else [env]
    labels = list(labels or (["real", "dream"] if real is not None else ["dream"]))
    clock = _pygame().time.Clock()
    episode_seed: int | None = seed

    def reset_all() -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        nonlocal episode_seed
        seed_now, episode_seed = episode_seed, None  # seeded once, then the RNG goes on
        if real is None:
            obs, info = env.reset(seed=seed_now)
            return [_frame(env, obs)], [info]
        robs, rinfo, options = start_real(real, seed_now, dream_context(env), keymap.noop)
        try:
            obs, info = env.reset(seed=seed_now, options=options)
            result.dream_started_from_real = True
        except (TypeError, ValueError, KeyError, NotImplementedError) as e:
            if result.dream_started_from_real is None:
                log(f"the dream env rejected the real frames as reset options ({e}); "
                    "it starts from its own reset instead")
            obs, info = env.reset(seed=seed_now)
            result.dream_started_from_real = False
        return [_frame(real, robs), _frame(env, obs)], [rinfo, info]

    frames, infos = reset_all()
    totals = [0.0] * len(envs)
    episode_step, paused, ended, action = 0, False, False, keymap.noop
    while True:
        pressed = set(keys())
        if QUIT in pressed:
            break
        if PAUSE in pressed:
            paused = not paused
        if RESET in pressed or ended:
            if ended:
                log(f"episode over after {episode_step} steps: "
                    + ", ".join(f"{n} return {t:g}" for n, t in zip(labels, totals, strict=True)))
            result.returns.append(totals[-1])
            frames, infos = reset_all()
            totals, episode_step, ended = [0.0] * len(envs), 0, False
        elif not paused:
            action = keymap.action(pressed)
            for i, e in enumerate(envs):
                obs, reward, terminated, truncated, info = e.step(action)
                frames[i], infos[i] = _frame(e, obs), info
                totals[i] += float(reward)
                ended = ended or bool(terminated or truncated)
            result.actions.append(action)
            result.steps += 1
            episode_step += 1
        buttons = "+".join(sorted(keymap.normalise(pressed))) or "-"
        status = (f"step {episode_step}   {clock.get_fps():.1f} fps   keys {buttons}   "
                  f"action {keymap.action_names[action]}" + ("   PAUSED" if paused else ""))
        pane_lines = [[f"{n}: return {t:g}", *_info_words(inf)]
                      for n, t, inf in zip(labels, totals, infos, strict=True)]
        shown = screen.show(frames, [status], pane_lines)
        if result.first_shown is None:
            result.first_shown = shown
        result.last_shown = shown
        result.frames_shown += 1
        if recorder is not None:
            recorder(shown)
        clock.tick(fps if fps > 0 else 0)
        if max_steps is not None and result.steps >= max_steps:
            break
    return result


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m neuralgym.play",
        description="Play a Neural env (the dream) with the keyboard: arrows, space = "
        "FIRE/JUMP, R reset, P pause, Esc quit.",
    )
    p.add_argument("env_id", help="a Neural env id, e.g. NeuralBreakout-v0")
    p.add_argument("--model", default=None, help="world-model folder (default: the env's own)")
    p.add_argument("--device", default=None, help="torch device of the dream, e.g. cpu, cuda")
    p.add_argument("--denoising-steps", type=int, default=None,
                   help="sampler steps per dreamed frame (default: the env's)")
    p.add_argument("--fps", type=float, default=15.0,
                   help="frames per second (0: no limit; default 15)")
    p.add_argument("--scale", type=int, default=3, help="integer zoom of the frames (default 3)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--mirror", action="store_true",
                      help="the real game (left) beside the dream (right), on the same keys")
    mode.add_argument("--real", action="store_true", help="play the real game alone")
    p.add_argument("--seed", type=int, default=0, help="reset seed (default 0)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N env steps")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="save what was shown")
    args = p.parse_args(argv)
    if args.scale < 1:
        p.error("--scale must be >= 1")
    return args


def make_envs(args: argparse.Namespace) -> tuple[gym.Env, gym.Env | None]:
    """(the env to play, the real game beside it in mirror mode or None)."""
    from neuralgym.real_env import make_real

    if args.real:
        given = [f for f in ("model", "device", "denoising_steps") if getattr(args, f) is not None]
        if given:
            print(f"--real: ignoring {', '.join('--' + f.replace('_', '-') for f in given)}")
        return make_real(args.env_id, render_mode="rgb_array"), None
    kwargs: dict[str, Any] = {k: getattr(args, k) for k in ("model", "device", "denoising_steps")
                              if getattr(args, k) is not None}
    real = make_real(args.env_id, render_mode="rgb_array") if args.mirror else None
    try:
        env = gym.make(args.env_id, render_mode="rgb_array", **kwargs)
    except BaseException:
        if real is not None:
            real.close()
        raise
    return env, real


SETUP_ERRORS: tuple[type[BaseException], ...] = (
    OSError, KeyError, ValueError, RuntimeError, gym.error.Error,
)  # a missing model / ROM / unknown id: shown as its message, exit 1


def _message(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        env, real = make_envs(args)
    except SETUP_ERRORS as e:
        hint = ""
        if isinstance(e, gym.error.NameNotFound) and args.env_id.startswith("Neural"):
            hint = " (the dream env is not registered in this install; --real plays the real game)"
        print(f"neuralgym.play: error: {_message(e)}{hint}", file=sys.stderr)
        return 1
    envs = [e for e in (real, env) if e is not None]
    try:
        keymap = KeyMap.from_action_names(action_names_of(env, args.env_id))
        n = len(keymap.action_names)
        if not (isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == n):
            raise ValueError(f"{args.env_id}: action space {env.action_space} does not match "
                             f"its {n} action names")
        if real is not None and getattr(real.action_space, "n", None) != n:
            raise ValueError(f"the real game's action space {real.action_space} differs from "
                             f"the dream's {env.action_space}")
    except SETUP_ERRORS as e:
        print(f"neuralgym.play: error: {_message(e)}", file=sys.stderr)
        for e_ in envs:
            e_.close()
        return 1
    shapes = [tuple(e.observation_space.shape or (0, 0, 3)) for e in envs]
    mode = "mirror: real | dream" if real is not None else ("real" if args.real else "dream")
    screen = Screen(f"neuralgym: {args.env_id} ({mode})", shapes, scale=args.scale)
    print(f"{args.env_id} ({mode}); keys: {keymap.describe()}; R reset, P pause, Esc quit",
          flush=True)
    writer = None
    if args.record:
        import imageio.v2 as imageio

        writer = imageio.get_writer(args.record, fps=args.fps if args.fps > 0 else 15,
                                    macro_block_size=2)
    try:
        result = play_loop(
            env, keymap, Keyboard(keymap), screen, real=real,
            labels=["real"] if args.real else None, seed=args.seed, fps=args.fps,
            max_steps=args.max_steps, recorder=writer.append_data if writer else None,
        )
    finally:
        if writer is not None:
            writer.close()
        screen.close()
        for e in envs:
            e.close()
    print(f"played {result.steps} steps, {len(result.returns)} episodes"
          + (f"; recorded {result.frames_shown} frames to {args.record}" if writer else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
