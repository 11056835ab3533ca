"""Do the Pong dream's frames show what its metadata says? A policy plays N games of the real
game and N dreams for L steps each; after every step the ball and the player's (right) paddle
are found in the observation frame and compared with where the RAM variables in `info` put
them (in the dream: g_phi's predictions, which the denoiser was conditioned on).

    python benchmarks/pong_frames.py --model checkpoints/pong --envs 8 --steps 64 \\
        --json pong-frames.json

In the real game the frame and the RAM agree up to a fixed offset (pixel - RAM), calibrated
here as the median over the real run and applied to the dream as well. The reward comes from
g_phi's metadata while a PPO agent sees the frames: where the dream draws the ball somewhere
other than where g_phi has it, the agent is paid for what it cannot see.

Per run: the in-play steps (ball_y > 0; in brackets those where the offset RAM position lies
off the playfield, which the game's never does but g_phi's regressed metadata can), the share
where the ball is seen (in brackets: of those with the RAM position on the playfield), the
seen ball's median |error| in x and y, the share of in-play steps with the ball seen within 4
pixels on both axes, the share of out-of-play steps (ball_y 0) that show a ball anyway, and
for the paddle the share of steps where it is seen, its median |error| and the share within 4.

Control (--control N): does the metadata place the objects? From N windows of the real game
(the policy's play, the ball in play and seen), the dream makes one step with the game's next
metadata, and again with one variable moved SHIFT pixels towards the field's middle (ball_x,
ball_y, player_y in turn); per variable the share of windows where the object is drawn within
4 pixels of the moved position ("follows") and of the unmoved one ("stays"), beside the share
within 4 pixels with nothing moved. A denoiser that draws where the past frames' motion
points, whatever the metadata, follows 0 and stays 1.

Detection (tolerant, for the dream's blurred colours), in the playfield rows 34..193: the ball
is the centroid (x, y) of the bright grey pixels (min channel > 150, max - min < 40); the
paddle is the y centroid of the green pixels (g > 140, r < 140, b < 140) in columns 136..147.
Where an object's pixels run into the playfield's top or bottom edge and span fewer rows than
the game draws it (half hidden behind a wall), its y centre is taken from the visible end
instead (without that, the real game's paddle at a wall is off by up to 5 pixels). NaN where
none is found.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralgym.cli import parse_args, sibling_script

ENV_ID = "NeuralPong-v0"
TOP, BOTTOM, WIDTH = 34, 194, 160  # the playfield's rows [TOP, BOTTOM) and columns
PADDLE_COLS = (136, 148)  # the player's paddle (140..143) and a margin, [lo, hi)
PADDLE_HEIGHT, BALL_HEIGHT = 16, 4  # rows of the real game's paddle and ball
NEAR = 4.0  # pixels: "seen where the metadata says"
VARIABLES = ("ball_x", "ball_y", "player_y")


@dataclass
class Args:
    model: str = field(default="default", metadata={
        "help": "world-model folder of the dream ('default': the one shipped for Pong)"})
    env: str = field(default=ENV_ID, metadata={"help": "the env id (only NeuralPong-v0)"})
    policy: str = field(default="random", metadata={
        "help": "'random', 'sticky-random', 'scripted' or a PPO model (.zip), as in "
                "benchmarks/dream_rewards.py"})
    envs: int = field(default=8, metadata={"help": "games and dreams played (N each)"})
    steps: int = field(default=64, metadata={"help": "steps each env plays (L)"})
    denoising_steps: int | None = field(default=None, metadata={
        "help": "sampler steps per model call (default: the folder's)"})
    device: str = field(default="cpu", metadata={"help": "torch device of the world model"})
    seed: int = field(default=0, metadata={"help": "seed of the envs and the policy"})
    json: str | None = field(default=None, metadata={"help": "write the results here (.json)"})
    context_noise: float | None = field(default=None, metadata={
        "help": "the dream's context noise level (default: the folder's sampler setting; -1: "
                "no context, for a denoiser trained with context dropout)"})
    control: int = field(default=0, metadata={
        "help": "also measure control with this many real windows (0: not)"})
    shift: float = field(default=24.0, metadata={
        "help": "--control: pixels a variable is moved by"})


def _centre_y(per_row: np.ndarray, height: int) -> np.ndarray:
    """(N,) y centre of an object `height` rows tall from (N, BOTTOM - TOP) counts of its
    pixels per playfield row: their centroid, or where they reach the playfield's top (bottom)
    edge and span fewer than `height` rows, their last (first) row -(+) (height - 1) / 2 (the
    rest is behind the wall); NaN where there are none."""
    rows = np.arange(TOP, BOTTOM, dtype=np.float64)
    out = np.full(len(per_row), np.nan)
    half = (height - 1) / 2
    for i, counts in enumerate(per_row):
        hit = np.flatnonzero(counts)
        if not hit.size:
            continue
        first, last = rows[hit[0]], rows[hit[-1]]
        clipped = last - first + 1 < height
        if clipped and first == TOP:
            out[i] = last - half
        elif clipped and last == BOTTOM - 1:
            out[i] = first + half
        else:
            out[i] = float((counts * rows).sum() / counts.sum())
    return out


def detect_ball(frames: np.ndarray) -> np.ndarray:
    """(N, 2) pixel (x, y) of the ball's centre in frames (N, 210, 160, 3) uint8: the
    centroid of the bright grey pixels of the playfield rows (y as `_centre_y`: the ball half
    behind a wall is centred on its visible end); NaN where there are none."""
    field_ = frames[:, TOP:BOTTOM].astype(np.int16)
    lo, hi = field_.min(-1), field_.max(-1)
    ball = (lo > 150) & (hi - lo < 40)  # (N, H, W)
    per_col = ball.sum(1).astype(np.float64)  # (N, W)
    count = per_col.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (per_col * np.arange(frames.shape[2])).sum(1) / count
    x[count == 0] = np.nan
    return np.stack([x, _centre_y(ball.sum(2), BALL_HEIGHT)], 1)


def detect_paddle(frames: np.ndarray) -> np.ndarray:
    """(N,) pixel y of the player's paddle's centre in frames (N, 210, 160, 3) uint8: the
    green pixels in its columns of the playfield rows, centred as `_centre_y` (their centroid,
    or from the visible end where the paddle is half behind a wall); NaN where there are
    none."""
    strip = frames[:, TOP:BOTTOM, PADDLE_COLS[0]:PADDLE_COLS[1]].astype(np.int16)
    r, g, b = strip[..., 0], strip[..., 1], strip[..., 2]
    green = (g > 140) & (r < 140) & (b < 140)
    return _centre_y(green.sum(2), PADDLE_HEIGHT)


def info_values(info: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """(n,) float arrays of VARIABLES from a vector env's batched info; NaN where a sub-env's
    info lacks one (gymnasium's `_key` mask False)."""
    return {key: _dream_rewards().info_column(info, key, n) for key in VARIABLES}


class Recorder:
    """`play`'s observe hook: per step (L, N) arrays of the detections ("seen_ball_x",
    "seen_ball_y", "seen_paddle_y") and of info's VARIABLES."""

    def __init__(self, steps: int, n: int) -> None:
        keys = ("seen_ball_x", "seen_ball_y", "seen_paddle_y", *VARIABLES)
        self.rows = {k: np.full((steps, n), np.nan) for k in keys}

    def __call__(self, t: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        ball = detect_ball(np.asarray(obs))
        self.rows["seen_ball_x"][t], self.rows["seen_ball_y"][t] = ball[:, 0], ball[:, 1]
        self.rows["seen_paddle_y"][t] = detect_paddle(np.asarray(obs))
        for key, values in info_values(info, len(obs)).items():
            self.rows[key][t] = values


def calibrate(rows: dict[str, np.ndarray]) -> dict[str, float]:
    """Offsets pixel - RAM (ball x, ball y, paddle y): medians over the steps where the object
    is seen (for the ball: in play, ball_y > 0)."""
    in_play = rows["ball_y"] > 0
    out = {}
    for name, seen, ram, where in (
            ("ball_x", "seen_ball_x", "ball_x", in_play),
            ("ball_y", "seen_ball_y", "ball_y", in_play),
            ("paddle_y", "seen_paddle_y", "player_y", np.isfinite(rows["player_y"]))):
        d = (rows[seen] - rows[ram])[where & np.isfinite(rows[seen])]
        if not d.size:
            raise ValueError(f"cannot calibrate {name}: never seen in the real game")
        out[name] = float(np.median(d))
    return out


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def _share(hits: np.ndarray, of: int) -> float | None:
    return float(hits.sum() / of) if of else None


def summary(rows: dict[str, np.ndarray], offsets: dict[str, float], near: float = NEAR
            ) -> dict[str, Any]:
    """Frames against metadata, from (L, N) (or flat) arrays: in-play steps (ball_y > 0), the
    share where the ball is seen, the median |error| in x and y of the seen ball against the
    offset RAM position, the share of in-play steps with the ball seen within `near` pixels on
    both axes, the share of out-of-play steps showing a ball anyway; the in-play steps whose
    offset RAM position lies off the playfield (g_phi's regressed metadata can have the ball in
    play off the screen, which the game never does) and the share of the others where the ball
    is seen; for the paddle over the steps with player_y: the share seen, the median |error|
    and the share within `near`."""
    r = {k: np.asarray(v, np.float64).reshape(-1) for k, v in rows.items()}
    in_play = r["ball_y"] > 0
    out_of_play = r["ball_y"] == 0
    seen = np.isfinite(r["seen_ball_x"]) & np.isfinite(r["seen_ball_y"])
    ex = np.abs(r["seen_ball_x"] - (r["ball_x"] + offsets["ball_x"]))
    ey = np.abs(r["seen_ball_y"] - (r["ball_y"] + offsets["ball_y"]))
    both = in_play & seen
    n_in = int(in_play.sum())
    px, py = r["ball_x"] + offsets["ball_x"], r["ball_y"] + offsets["ball_y"]
    on_field = in_play & (px >= 0) & (px < WIDTH) & (py >= TOP) & (py < BOTTOM)
    n_out = int(out_of_play.sum())
    has_paddle = np.isfinite(r["player_y"])
    paddle_seen = has_paddle & np.isfinite(r["seen_paddle_y"])
    ep = np.abs(r["seen_paddle_y"] - (r["player_y"] + offsets["paddle_y"]))
    n_paddle = int(has_paddle.sum())
    return {
        "steps": int(np.isfinite(r["ball_y"]).sum()),
        "in_play": n_in,
        "ball_seen": _share(both, n_in),
        "in_play_off_field": n_in - int(on_field.sum()),
        "ball_seen_on_field": _share(on_field & seen, int(on_field.sum())),
        "ball_error_x_median": _median(ex[both]),
        "ball_error_y_median": _median(ey[both]),
        "ball_near": _share(both & (ex <= near) & (ey <= near), n_in),
        "out_of_play": n_out,
        "ball_seen_out_of_play": _share(out_of_play & seen, n_out),
        "paddle_steps": n_paddle,
        "paddle_seen": _share(paddle_seen, n_paddle),
        "paddle_error_median": _median(ep[paddle_seen]),
        "paddle_near": _share(paddle_seen & (ep <= near), n_paddle),
    }


def markdown_table(results: dict[str, dict[str, Any]], near: float = NEAR) -> list[str]:
    """The runs' summaries as a markdown table."""
    def f(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    n = f"{near:g}"
    lines = [f"| run | in-play steps (RAM off the field) | ball seen (RAM on the field) | ball "
             f"error x / y (median px) | ball within {n} px | ball seen out of play (steps) | "
             f"paddle seen | paddle error (median px) | paddle within {n} px |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in results.items():
        lines.append(
            f"| {name} | {s['in_play']:,} ({s['in_play_off_field']:,}) | {f(s['ball_seen'])} "
            f"({f(s['ball_seen_on_field'])}) | "
            f"{f(s['ball_error_x_median'], '.1f')} / {f(s['ball_error_y_median'], '.1f')} | "
            f"{f(s['ball_near'])} | {f(s['ball_seen_out_of_play'])} ({s['out_of_play']}) | "
            f"{f(s['paddle_seen'])} | {f(s['paddle_error_median'], '.1f')} | "
            f"{f(s['paddle_near'])} |")
    return lines


# variable moved -> (its pixel offset's key, its column in `control`'s detections)
CONTROLLED = {"ball_x": ("ball_x", 0), "ball_y": ("ball_y", 1), "player_y": ("paddle_y", 2)}


def control_windows(env_id: str, names: list[str], context: int, n: int, seed: int,
                    policy: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n windows of the real game played by `policy` (a `dream_rewards` policy of one env):
    frames (n, K, H, W, 3), metadata (n, K+1, M) in `names`' order (the last row the next
    step's) and actions (n, K), the last the next step's; taken every 7 steps where the next
    frame shows the ball in play."""
    from neuralgym import make_real

    env = make_real(env_id)
    frames: list[np.ndarray] = []
    metas: list[list[float]] = []
    actions: list[int] = []
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    obs, info = env.reset(seed=seed)
    episode = 0
    while len(out[0]) < n:
        frames.append(obs)
        metas.append([float(info[k]) for k in names])
        a = int(policy(obs, info))
        actions.append(a)
        obs, _, terminated, truncated, info = env.step(a)
        t = len(frames)
        if (t >= context and t % 7 == 0 and info["ball_y"] > 0
                and np.isfinite(detect_ball(obs[None])).all()):
            out[0].append(np.stack(frames[-context:]))
            out[1].append(np.array(metas[-context:] + [[float(info[k]) for k in names]]))
            out[2].append(np.array(actions[-context:]))
        if terminated or truncated:
            episode += 1
            obs, info = env.reset(seed=seed + episode)
            frames, metas, actions = [], [], []
    env.close()
    return tuple(np.stack(x) for x in out)  # type: ignore[return-value]


def control(model: Any, windows: tuple[np.ndarray, np.ndarray, np.ndarray],
            offsets: dict[str, float], shift: float, seed: int, near: float = NEAR
            ) -> dict[str, Any]:
    """One dream step per window with the next metadata as recorded and with each of
    CONTROLLED moved by `shift` pixels towards the field's middle: the share of windows whose
    object is drawn within `near` pixels of the moved (follows) and unmoved (stays) position."""
    import torch

    frames, metadata, actions = windows
    names = list(model.g.config.metadata_names)
    K = frames.shape[1]
    middle = {"ball_x": WIDTH / 2, "ball_y": (TOP + BOTTOM) / 2, "paddle_y": (TOP + BOTTOM) / 2}

    state = model.start(frames, metadata[:, :K], actions[:, :K - 1])  # `step` keeps it as is

    def drawn(meta_next: np.ndarray) -> np.ndarray:
        g = torch.Generator(model.device).manual_seed(seed)
        out, _, _ = model.step(state, torch.as_tensor(actions[:, K - 1:]), g,
                               metadata=torch.as_tensor(meta_next[:, None], dtype=torch.float32))
        out = out[:, 0].cpu().numpy()  # (n, H, W, 3)
        return np.column_stack([detect_ball(out), detect_paddle(out)])  # (n, 3): x, y, paddle

    truth = metadata[:, K].astype(np.float64)  # (n, M)
    base = drawn(truth)
    results: dict[str, Any] = {"windows": len(frames), "shift_px": shift}
    for var, (offset_key, column) in CONTROLLED.items():
        j = names.index(var)
        where = truth[:, j] + offsets[offset_key]  # pixels
        moved = truth.copy()
        moved[:, j] += np.where(where < middle[offset_key], shift, -shift)
        seen = drawn(moved)[:, column]
        results[var] = {
            "near_unmoved": _share(np.abs(base[:, column] - where) <= near, len(frames)),
            "follows": _share(np.abs(seen - (moved[:, j] + offsets[offset_key])) <= near,
                              len(frames)),
            "stays": _share(np.abs(seen - where) <= near, len(frames)),
        }
    return results


def _dream_rewards() -> Any:
    """benchmarks/dream_rewards.py as a module (its `play` and `make_policies`)."""
    return sibling_script(__file__, "dream_rewards")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    if args.env != ENV_ID:
        sys.exit(f"error: only {ENV_ID} is supported (its frames and RAM variables), "
                 f"got {args.env!r}")
    if args.envs < 1 or args.steps < 1:
        sys.exit("error: --envs and --steps must be at least 1")
    import gymnasium as gym
    from tqdm import tqdm

    from neuralgym import make_real
    from neuralgym.games import get_spec

    dr = _dream_rewards()
    spec = get_spec(args.env)
    try:  # a missing PPO model: say so before playing
        dr.make_policies(args.policy, args.env, 1, spec.n_actions, args.seed)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")

    recorded: dict[str, dict[str, np.ndarray]] = {}
    wall: dict[str, float] = {}
    for name in ("real", "dream"):
        t0 = time.perf_counter()
        if name == "real":
            venv: gym.vector.VectorEnv = gym.vector.SyncVectorEnv(
                [lambda: make_real(args.env) for _ in range(args.envs)])
        else:
            try:
                venv = gym.make_vec(args.env, num_envs=args.envs,
                                    model=None if args.model == "default" else args.model,
                                    device=args.device, denoising_steps=args.denoising_steps)
            except (FileNotFoundError, ValueError) as e:
                sys.exit(f"error: {e}")
            if args.context_noise is not None:
                venv.unwrapped.model.context_noise = args.context_noise  # type: ignore[attr-defined]
        policies = dr.make_policies(args.policy, args.env, args.envs, spec.n_actions,
                                    args.seed)
        recorder = Recorder(args.steps, args.envs)
        with tqdm(total=args.steps, desc=name, unit="step") as bar:
            dr.play(venv, policies, args.steps, args.seed, lambda _: bar.update(),
                    observe=recorder)
        if name == "dream":
            model = venv.unwrapped.model  # type: ignore[attr-defined]
        venv.close()
        recorded[name] = recorder.rows
        wall[name] = round(time.perf_counter() - t0, 2)

    try:
        offsets = calibrate(recorded["real"])
    except ValueError as e:
        sys.exit(f"error: {e} (play more --steps or --envs)")
    results = {name: {**summary(rows, offsets), "wall_s": wall[name]}
               for name, rows in recorded.items()}
    print(f"{args.env}, policy {args.policy}, model {args.model}: frames against info over "
          f"{args.envs} envs x {args.steps} steps; offsets pixel - RAM (real game's medians): "
          f"ball x {offsets['ball_x']:+.1f}, ball y {offsets['ball_y']:+.1f}, paddle y "
          f"{offsets['paddle_y']:+.1f}")
    print("\n".join(markdown_table(results)))
    controlled = None
    if args.control:
        policy = dr.make_policies(args.policy, args.env, 1, spec.n_actions, args.seed)
        windows = control_windows(args.env, list(model.g.config.metadata_names), model.context,
                                  args.control, args.seed, policy[0])
        controlled = control(model, windows, offsets, args.shift, args.seed)
        print(f"control over {args.control} real windows, variables moved {args.shift:g} px "
              f"(share drawn within {NEAR:g} px):")
        for var in CONTROLLED:
            c = controlled[var]
            print(f"  {var}: unmoved {c['near_unmoved']:.2f}; moved: follows "
                  f"{c['follows']:.2f}, stays {c['stays']:.2f}")
    if args.json:
        from neuralgym.data import atomic_write_json

        atomic_write_json(args.json, {"benchmark": "pong_frames", "env_id": args.env,
                                      "args": vars(args), "near_px": NEAR,
                                      "offsets": offsets, "results": results,
                                      "control": controlled})
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
