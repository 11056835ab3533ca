r"""Score a policy in the REAL game (or, with --dream, in a world model's dream): mean episode
return with a bootstrap 95% CI.

    python agents/evaluate_policy.py --env NeuralBreakout-v0 --policy runs/ppo-dream.zip \
        --episodes 30 --seed 0 --json runs/ppo-dream-real.json
    python agents/evaluate_policy.py --env NeuralBreakout-v0 --policy random --episodes 30 \
        --json runs/random-real.json

--policy is a PPO model written by agents/train_ppo.py (real-game or dream trained: both see
the same preprocessed observation, `neuralgym.policies.PPOPolicy`), or `random` for the uniform
random baseline. Episode k is played in `neuralgym.make_real(--env)` reset with a seed drawn
from (--seed, k), and the policy is reset with the same seed (PPO samples its actions from that
generator; --deterministic takes the most likely action instead), so a command gives the same
numbers whatever --workers is. An episode ends when the game terminates it, at the game's time
limit, or after --max-steps-per-episode steps (then it is marked truncated). Returns are the
game's own (unclipped). The CI is `neuralgym.metrics.bootstrap_ci` over episodes (percentile
bootstrap, 1000 resamples). --json writes the summary and every episode, atomically.

Learning curves (the .curve.csv files agents/train_ppo.py writes beside its models):

    python agents/evaluate_policy.py --curves runs/ppo-dream.curve.csv runs/ppo-real.curve.csv \
        --labels dream real --reference runs/ppo-dream-real.json runs/random-real.json \
        --plot runs/curves.png

draws return against training steps, one line per CSV, and each --reference JSON (a result of
this script) as a horizontal line with its CI band.

In the dream instead (--dream DIR, or 'default' for the shipped model; --device): the same
episodes, seeds and statistics with `gym.make(--env, model=DIR)` in place of the real game, to
see how the dream's rewards and episode ends compare with the game's under the same policy:

    python agents/evaluate_policy.py --env NeuralPong-v0 --policy random --dream default \
        --episodes 30 --max-steps-per-episode 1000 --json runs/random-dream.json
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.data import atomic_write_json
from neuralgym.games import get_spec
from neuralgym.metrics import bootstrap_ci
from neuralgym.model_folder import ModelFolderError
from neuralgym.policies import NAMED, make_policy
from neuralgym.start_contexts import StartContextsError


@dataclass
class Args:
    env: str | None = field(default=None, metadata={
        "help": "Neural env id of the game, e.g. NeuralBreakout-v0 (the real game is played)"})
    policy: str | None = field(default=None, metadata={
        "help": "a PPO model (.zip from agents/train_ppo.py), 'random', 'sticky-random' or "
                "'scripted' (the game's scripted player)"})
    episodes: int = field(default=30, metadata={"help": "episodes to play"})
    seed: int = field(default=0, metadata={"help": "seed of the episodes and the policy"})
    json: str | None = field(default=None, metadata={"help": "write the results here (.json)"})
    max_steps_per_episode: int | None = field(default=None, metadata={
        "help": "cut an episode after this many steps and mark it truncated (default: the "
                "game's time limit)"})
    deterministic: bool = field(default=False, metadata={
        "help": "PPO: take the most likely action instead of sampling"})
    workers: int = field(default=1, metadata={"help": "processes playing episodes"})
    curves: tuple[str, ...] = field(default=(), metadata={
        "help": "plot mode: learning-curve CSVs (step,mean_return,...) to draw with --plot"})
    labels: tuple[str, ...] = field(default=(), metadata={
        "help": "plot mode: a label per curve (default: the file names)"})
    reference: tuple[str, ...] = field(default=(), metadata={
        "help": "plot mode: result JSONs of this script, drawn as horizontal lines with CIs"})
    plot: str | None = field(default=None, metadata={"help": "plot mode: the image to write"})
    dream: str | None = field(default=None, metadata={
        "help": "play in the dream of this world-model folder ('default': the shipped model) "
                "instead of the real game"})
    device: str = field(default="cpu", metadata={"help": "--dream: the world model's device"})


class EvaluateError(Exception):
    """A problem with the command's inputs, shown without a traceback."""


RANDOM = "random"


# -- playing --------------------------------------------------------------------------------


def episode_seed(seed: int, k: int) -> int:
    """The seed of episode k: from (seed, k) only, so it does not depend on --workers."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def make_env(env_id: str, dream: str | None = None, device: str = "cpu") -> gym.Env:
    """The real game, or with `dream` the dream of that folder ('default': the shipped one)."""
    if dream is None:
        return make_real(env_id)
    return gym.make(env_id, model=None if dream == "default" else dream, device=device)


def play_episodes(env_id: str, policy: str, seeds: list[int], max_steps: int | None,
                  deterministic: bool = False, dream: str | None = None,
                  device: str = "cpu") -> list[dict[str, Any]]:
    """Play one episode per seed (in the real game, or in the dream of `dream`); returns
    {seed, return, length, terminated, truncated} for each."""
    if policy not in NAMED or dream is not None:
        import torch

        torch.set_num_threads(1)  # one core per worker
    env = make_env(env_id, dream, device)
    try:
        agent = make_policy(policy, env_id, int(env.action_space.n), deterministic)
        results = []
        for s in seeds:
            agent.reset(s)
            obs, info = env.reset(seed=s)
            total, steps, terminated, truncated = 0.0, 0, False, False
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(agent(obs, info))
                total += float(reward)
                steps += 1
                if max_steps is not None and steps >= max_steps and not terminated:
                    truncated = True
            results.append({"seed": s, "return": total, "length": steps,
                            "terminated": bool(terminated), "truncated": bool(truncated)})
        return results
    finally:
        env.close()


def evaluate(env_id: str, policy: str, episodes: int, seed: int = 0,
             max_steps: int | None = None, deterministic: bool = False, workers: int = 1,
             dream: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Play `episodes` episodes with `policy` (a .zip path or "random") in the real game, or in
    the dream of `dream`; the summary (mean return, bootstrap 95% CI, ...) and every episode,
    JSON-serialisable."""
    seeds = [episode_seed(seed, k) for k in range(episodes)]
    t0 = time.time()
    workers = max(1, min(workers, episodes))
    if workers == 1:
        results = play_episodes(env_id, policy, seeds, max_steps, deterministic, dream, device)
    else:
        chunks = [seeds[w::workers] for w in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            parts = list(pool.map(play_episodes, [env_id] * workers, [policy] * workers,
                                  chunks, [max_steps] * workers, [deterministic] * workers,
                                  [dream] * workers, [device] * workers))
        by_seed = {r["seed"]: r for part in parts for r in part}
        results = [by_seed[s] for s in seeds]
    returns = np.array([r["return"] for r in results])
    lo, hi = bootstrap_ci(returns)
    return {
        "env": env_id,
        "policy": policy,
        "real_game": dream is None,
        "dream": dream,
        "episodes": episodes,
        "seed": seed,
        "max_steps_per_episode": max_steps,
        "deterministic": deterministic,
        "mean_return": float(returns.mean()),
        "ci95": [lo, hi],
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
        "mean_length": float(np.mean([r["length"] for r in results])),
        "truncated": int(sum(r["truncated"] for r in results)),
        "wall_s": round(time.time() - t0, 2),
        "per_episode": results,
    }


# -- learning curves ------------------------------------------------------------------------


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean returns) of a learning-curve CSV written by agents/train_ppo.py."""
    if not path.is_file():
        raise EvaluateError(f"learning curve {path} does not exist (agents/train_ppo.py "
                            "writes OUT.curve.csv beside its model OUT.zip)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        steps = np.array([int(r["step"]) for r in rows], np.int64)
        returns = np.array([float(r["mean_return"]) for r in rows], np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluateError(f"{path} is not a learning curve with columns step,mean_return "
                            f"({type(e).__name__}: {e})") from None
    return steps, returns


def plot_curves(curves: list[Path], out: Path, labels: list[str] | None = None,
                references: list[Path] | None = None) -> None:
    """Mean episode return against training steps, one line per learning-curve CSV, and a
    horizontal line with its 95% CI band per evaluation JSON; written to `out` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels or [p.stem.removesuffix(".curve") for p in curves])
    if len(labels) != len(curves):
        raise EvaluateError(f"{len(labels)} labels for {len(curves)} curves")
    data = [read_curve(p) for p in curves]
    refs = []
    for p in references or []:
        try:
            r = json.loads(Path(p).read_text())
            refs.append((r, float(r["mean_return"]), [float(x) for x in r["ci95"]]))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise EvaluateError(f"reference {p} is not a result of evaluate_policy.py "
                                f"({type(e).__name__}: {e})") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (steps, returns), label in zip(data, labels, strict=True):
        ax.plot(steps, returns, marker="." if len(steps) < 30 else None, label=label)
    for k, (r, mean, (lo, hi)) in enumerate(refs):
        name = "random" if r.get("policy") == RANDOM else Path(str(r.get("policy"))).stem
        color = f"C{len(data) + k}"
        ax.axhline(mean, color=color, linestyle="--", linewidth=1,
                   label=f"{name} in the real game: {mean:.1f} [{lo:.1f}, {hi:.1f}] (95% CI)")
        ax.axhspan(lo, hi, color=color, alpha=0.12)
    ax.set_xlabel("training steps")
    ax.set_ylabel("mean episode return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


# -- main -----------------------------------------------------------------------------------


def run(args: Args) -> None:
    if args.curves or args.plot:
        if not (args.curves and args.plot):
            raise EvaluateError("plot mode needs both --curves CSV... and --plot OUT.png")
        plot_curves([Path(p) for p in args.curves], Path(args.plot), list(args.labels) or None,
                    [Path(p) for p in args.reference])
        print(f"wrote {args.plot}")
        if args.policy is None:
            return
    if args.env is None or args.policy is None:
        raise EvaluateError("pass --env ID and --policy PATH.zip|random (or --curves and "
                            "--plot to draw learning curves)")
    get_spec(args.env)  # unknown id -> UnknownEnvError listing the known ones
    if args.episodes < 1 or args.workers < 1:
        raise EvaluateError("--episodes and --workers must be >= 1")
    if args.max_steps_per_episode is not None and args.max_steps_per_episode < 1:
        raise EvaluateError("--max-steps-per-episode must be >= 1")
    if args.policy not in NAMED and not Path(args.policy).is_file():
        raise EvaluateError(f"policy {args.policy} does not exist: pass a .zip written by "
                            f"agents/train_ppo.py, or one of {', '.join(NAMED)}")
    env = make_env(args.env, args.dream, args.device)  # clear errors before the workers: the
    try:  # dream's model loads, the policy fits the game (or the game has a scripted player)
        make_policy(args.policy, args.env, int(env.action_space.n))
    except ValueError as e:
        raise EvaluateError(str(e)) from None
    finally:
        env.close()
    result = evaluate(args.env, args.policy, args.episodes, args.seed,
                      args.max_steps_per_episode, args.deterministic, args.workers,
                      args.dream, args.device)
    lo, hi = result["ci95"]
    where = "real game" if args.dream is None else f"dream of {args.dream}"
    print(f"{args.env} ({where}), policy {args.policy}: mean return "
          f"{result['mean_return']:.2f} (95% CI {lo:.2f} .. {hi:.2f}) over {args.episodes} "
          f"episodes, mean length {result['mean_length']:.0f}, {result['truncated']} truncated",
          flush=True)
    if args.json:
        atomic_write_json(Path(args.json), {**result, "args": asdict(args)})
        print(f"wrote {args.json}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (EvaluateError, KeyError, FileNotFoundError, ValueError, OSError, ModelFolderError,
            StartContextsError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"evaluate_policy.py: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
