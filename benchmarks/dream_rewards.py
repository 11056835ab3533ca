"""Does the dream pay what the game pays? A policy plays N games of the real game and N dreams
(one batched vector env) for L steps each, episodes restarting as they end, and the points
won and lost per 1,000 steps are compared (mean over the N envs, bootstrap 95% CI).

An agent trained in the dream learns whatever the dream rewards: where the dream hands out
points the game never gives (a drifting score), the agent learns to collect those and fails
in the real game. This measures that directly, for any policy: uniform random, the game's
scripted player (Pong's follows the ball and wins points that random play rarely does), or a
PPO model from agents/train_ppo.py (for instance the one trained in that dream).

    python benchmarks/dream_rewards.py --env NeuralPong-v0 --envs 16 --steps 500 \\
        --without-limits --json pong-dream-rewards.json

`--without-limits` also dreams with the game's per-step limits on g_phi's metadata switched
off (`WorldModel.step_limits = None`), on the same seeds. Dreams start from the model
folder's start contexts (recorded mid-game), real games from the game's reset, so points per
step are compared, not whole-episode returns.

`--trace FILE.npz` also keeps every step of every run, to see where the dream parts from the
game (the ball passing a paddle that the game would bounce it off, say): for each run
(real, dream, ...) the actions `<run>/actions` (L, N), the rewards `<run>/rewards` (L, N) and
each of the game's metadata variables after the step `<run>/<variable>` (L, N), as `info`
gives them (in the dream: g_phi's predictions).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from neuralgym.cli import parse_args
from neuralgym.games import get_spec
from neuralgym.metrics import summarize
from neuralgym.sb3_vec_env import split_infos

RANDOM = "random"


@dataclass
class Args:
    env: str = field(metadata={"help": "Neural env id, e.g. NeuralPong-v0"})
    model: str = field(default="default", metadata={
        "help": "world-model folder of the dream ('default': the one shipped for --env)"})
    policy: str = field(default=RANDOM, metadata={
        "help": "'random' (uniform), 'sticky-random', 'scripted' (the game's scripted player, "
                "which reads the RAM variables in info) or a PPO model (.zip from "
                "agents/train_ppo.py)"})
    envs: int = field(default=16, metadata={"help": "games and dreams played (N each)"})
    steps: int = field(default=500, metadata={"help": "steps each env plays (L)"})
    denoising_steps: int | None = field(default=None, metadata={
        "help": "sampler steps per model call (default: the folder's)"})
    device: str = field(default="cpu", metadata={"help": "torch device of the world model"})
    without_limits: bool = field(default=False, metadata={
        "help": "also dream without the game's per-step limits on the metadata"})
    sample_metadata: bool = field(default=False, metadata={
        "help": "the dream draws g_phi's scores from its predicted distributions "
                "(WorldModel.sample_metadata) instead of taking the most likely"})
    seed: int = field(default=0, metadata={"help": "seed of the envs and the policy"})
    json: str | None = field(default=None, metadata={"help": "write the results here (.json)"})
    trace: str | None = field(default=None, metadata={
        "help": "also write every step (actions, rewards, metadata per run) here (.npz)"})


def make_policies(policy: str, env_id: str, n: int, n_actions: int, seed: int) -> list[Any]:
    """One policy per env (a PPO policy stacks its env's frames), seeded per env."""
    from neuralgym.policies import make_policy

    policies = [make_policy(policy, env_id, n_actions) for _ in range(n)]
    for i, p in enumerate(policies):
        p.reset(seed * 1000 + i)
    return policies


def info_column(info: dict[str, Any], key: str, n: int) -> np.ndarray:
    """(n,) float values of `key` in a vector env's batched info; NaN where it is absent or
    its gymnasium `_key` mask is False (a sub-env whose info lacks it this step)."""
    values = np.full(n, np.nan)
    if key in info:
        values = np.asarray(info[key], np.float64).copy()
        mask = info.get(f"_{key}")
        if mask is not None:
            values[~np.asarray(mask, bool)] = np.nan
    return values


def play(venv: gym.vector.VectorEnv, policies: list[Any], steps: int, seed: int,
         progress: Callable[[int], None] | None = None,
         trace: dict[str, np.ndarray] | None = None,
         observe: Callable[[int, np.ndarray, dict], None] | None = None
         ) -> dict[str, np.ndarray]:
    """Step `venv` (next-step autoreset) `steps` times with one policy per sub-env; per env
    (N,): points won (sum of positive rewards), points lost (sum of negative, as a positive
    count), episodes ended, and the steps that counted (reset steps do not). With `trace`
    (a dict of (L, N) arrays: "actions", "rewards" and any of info's keys), step t's actions,
    rewards and info values after it are written into row t (NaN where info lacks a key).
    With `observe`, `observe(t, obs, info)` is called after step t with its batched
    observations (N, H, W, 3) and the vector env's batched info dict."""
    n = venv.num_envs
    won, lost = np.zeros(n), np.zeros(n)
    ended, counted = np.zeros(n, np.int64), np.zeros(n, np.int64)
    obs, info = venv.reset(seed=seed)
    resetting = np.zeros(n, bool)
    for t in range(steps):
        infos = split_infos(info, n)  # a scripted policy reads the metadata
        actions = np.array([p(obs[i], infos[i]) for i, p in enumerate(policies)])
        obs, reward, terminated, truncated, info = venv.step(actions)
        if observe is not None:
            observe(t, obs, info)
        if trace is not None:
            now = {"actions": actions, "rewards": reward}
            for key, rows in trace.items():  # NaN where info lacks it (a reset step's)
                rows[t] = now[key] if key in now else info_column(info, key, n)
        live = ~resetting  # a step that resets a sub-env is not a game step
        won += np.where(live, np.maximum(reward, 0), 0)
        lost += np.where(live, np.maximum(-reward, 0), 0)
        counted += live
        done = (terminated | truncated) & live
        ended += done
        for i in np.flatnonzero(resetting):  # a new episode: a fresh frame stack
            policies[i].reset(seed * 1000 + i + 7919 * (t + 1))
        resetting = done
        if progress:
            progress(t)
    return {"won": won, "lost": lost, "ended": ended, "steps": counted}


def rates(counts: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-env points won / lost / net and episodes ended per 1,000 steps, summarised."""
    per = 1000.0 / np.maximum(counts["steps"], 1)
    out = {k: summarize(counts[k] * per) for k in ("won", "lost", "ended")}
    out["net"] = summarize((counts["won"] - counts["lost"]) * per)
    out["steps"] = int(counts["steps"].sum())
    return out


def markdown_table(results: dict[str, Any]) -> list[str]:
    """The runs' rates per 1,000 steps as a markdown table (also benchmarks/report.py's)."""
    lines = ["| run | game steps | points won | points lost | net | episodes ended |",
             "| --- | ---: | --- | --- | --- | --- |"]
    for name, r in results.items():
        cells = [f"{r[k]['mean']:.2f} [{r[k]['ci95'][0]:.2f}, {r[k]['ci95'][1]:.2f}]"
                 for k in ("won", "lost", "net", "ended")]
        lines.append(f"| {name} | {r['steps']:,} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    try:
        spec = get_spec(args.env)
    except KeyError as e:
        sys.exit(f"error: {e}")
    if args.envs < 1 or args.steps < 1:
        sys.exit("error: --envs and --steps must be at least 1")
    try:  # a missing PPO model or a game without a scripted player: say so before playing
        make_policies(args.policy, args.env, 1, spec.n_actions, args.seed)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    from tqdm import tqdm

    from neuralgym import make_real

    results: dict[str, Any] = {}
    traces: dict[str, np.ndarray] = {}
    variants = ["real", "dream"] + (["dream-without-limits"] if args.without_limits else [])
    for name in variants:
        t0 = time.perf_counter()
        if name == "real":
            venv: gym.vector.VectorEnv = gym.vector.SyncVectorEnv(
                [lambda: make_real(args.env) for _ in range(args.envs)])
        else:
            venv = gym.make_vec(args.env, num_envs=args.envs,
                                model=None if args.model == "default" else args.model,
                                device=args.device, denoising_steps=args.denoising_steps,
                                sample_metadata=args.sample_metadata)
            if name == "dream-without-limits":
                venv.unwrapped.model.step_limits = None  # type: ignore[attr-defined]
        policies = make_policies(args.policy, args.env, args.envs, spec.n_actions, args.seed)
        trace = None
        if args.trace:
            trace = {key: np.zeros((args.steps, args.envs), np.float32)
                     for key in ("actions", "rewards", *spec.metadata_names)}
        with tqdm(total=args.steps, desc=name, unit="step") as bar:
            counts = play(venv, policies, args.steps, args.seed, lambda _: bar.update(), trace)
        traces.update({f"{name}/{key}": rows for key, rows in (trace or {}).items()})
        venv.close()
        results[name] = {**rates(counts), "wall_s": round(time.perf_counter() - t0, 2)}

    print(f"{args.env}, policy {args.policy}: per 1,000 steps, mean over {args.envs} envs "
          f"of {args.steps} steps [95% CI]")
    print("\n".join(markdown_table(results)))
    if args.json:
        from neuralgym.data import atomic_write_json

        atomic_write_json(args.json, {"benchmark": "dream_rewards", "env_id": args.env,
                                      "args": vars(args), "results": results})
        print(f"results: {args.json}")
    if args.trace:
        from neuralgym.data import atomic_open

        with atomic_open(args.trace, "wb") as f:
            np.savez_compressed(f, **traces)
        print(f"trace: {args.trace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
