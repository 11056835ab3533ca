r"""Record episodes of a real game played by an agent, into a dataset folder.

    python agents/record.py --env NeuralBreakout-v0 --agent sticky-random --steps 100000 \
        --seed 0 --out runs/breakout

Each worker process plays its own copy of the game and writes its episodes straight to
OUT/episodes/<agent>-s<seed>-w<worker>-<number> (nothing but step counts goes back to the main
process). With --no-frames the episodes keep the game's variables, actions and emulator states
but no frames (<agent>-s<seed>-noframes-w<worker>-<number>): a million steps in megabytes, to
train a g_phi that reads no frames (train_metadata.py --no-latent-input). The step budget is
split across the workers; an episode is cut (truncated) where it would overrun its worker's
budget, so the dataset holds exactly --steps steps. Episode seeds come from (seed, worker,
number), so the same command gives the same data.

Resume: re-running the same command (same --seed, --agent, --workers) continues where it
stopped: each worker counts the steps of its episodes already on disk and records only the
rest. A crash loses at most the episode each worker was writing. At the end OUT/index.json is
rebuilt and a summary printed.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing as mp
import os
import queue
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.data import INDEX, Dataset, save_episode
from neuralgym.games import get_spec
from neuralgym.policies import PPOPolicy, RandomPolicy, make_policy, scripted_policy
from neuralgym.recording import record_episode

AGENTS = ("random", "sticky-random", "scripted", "ppo")


@dataclass
class Args:
    env: str = field(metadata={"help": "Neural env id of the game, e.g. NeuralBreakout-v0"})
    out: str = field(metadata={"help": "dataset folder; episodes go to OUT/episodes/"})
    agent: str = field(default="random", metadata={
        "help": "who plays: uniform random, sticky-random (actions held for random runs), "
                "scripted (the game's scripted player: Pong's follows the ball), or a PPO "
                "model (--ppo-model)", "choices": AGENTS})
    ppo_model: str | None = field(default=None, metadata={
        "help": "the .zip written by agents/train_ppo.py (--agent ppo)"})
    steps: int = field(default=100_000, metadata={
        "help": "total steps to record (over all workers, episodes already on disk included)"})
    seed: int = field(default=0, metadata={"help": "seed of the whole recording"})
    workers: int = field(default=os.cpu_count() or 1, metadata={
        "help": "worker processes; resume with the same number"})
    max_episode_steps: int = field(default=2000, metadata={
        "help": "longest episode; a longer one is cut and marked truncated"})
    frames: bool = field(default=True, metadata={
        "help": "keep the frames (--no-frames: the game's variables, actions and states only, "
                "for a g_phi that reads no frames; its episodes are named apart)"})
    state_every: int = field(default=50, metadata={
        "help": "save the emulator state every this many steps (and at step 0)"})


class RecordError(Exception):
    """A problem with the command's inputs, shown to the user without a traceback."""


# -- episodes on disk ---------------------------------------------------------------------

def run_prefix(args: Args) -> str:
    """This run's episode names' start: agent, seed, frames or not. A PPO agent is named by its
    model's file (ppo-real-), so that another model's play with the same seed is a new run,
    not the resumption of the first."""
    agent = f"ppo-{Path(args.ppo_model).stem}" if args.agent == "ppo" else args.agent
    return f"{agent}-s{args.seed}-" + ("" if args.frames else "noframes-")


def worker_prefix(args: Args, worker: int) -> str:
    return f"{run_prefix(args)}w{worker:02d}-"


def episode_name(args: Args, worker: int, number: int) -> str:
    return f"{worker_prefix(args, worker)}{number:05d}"


def completed_episodes(episodes_dir: Path, prefix: str) -> dict[str, int]:
    """Name -> length of the complete episodes whose name starts with `prefix`."""
    done = {}
    for d in sorted(episodes_dir.glob(f"{prefix}*")):
        try:
            done[d.name] = int(json.loads((d / "episode.json").read_text())["length"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            continue  # incomplete; reindex leaves it out
    return done


def worker_budget(args: Args, worker: int) -> int:
    """Worker `worker`'s share of the --steps budget."""
    return args.steps // args.workers + (1 if worker < args.steps % args.workers else 0)


def episode_seed(seed: int, worker: int, number: int) -> int:
    """The seed of one episode, derived from (run seed, worker, episode number)."""
    return int(np.random.SeedSequence([seed, worker, number]).generate_state(1)[0])


def make_agent(args: Args, n_actions: int) -> RandomPolicy | PPOPolicy:
    if args.agent != "ppo":
        return make_policy(args.agent, args.env, n_actions)
    import torch

    torch.set_num_threads(1)  # one core per worker
    return make_policy(str(args.ppo_model), args.env, n_actions)


# -- one worker ---------------------------------------------------------------------------

def work(args: Args, worker: int, progress: mp.Queue) -> None:
    """Play and save episodes until this worker's share of the budget is on disk."""
    try:
        episodes_dir = Path(args.out) / "episodes"
        done = completed_episodes(episodes_dir, worker_prefix(args, worker))
        steps, number = sum(done.values()), len(done)
        budget = worker_budget(args, worker)
        if steps >= budget:
            return
        env = make_real(args.env).unwrapped
        policy = make_agent(args, int(env.action_space.n))
        while steps < budget:
            name = episode_name(args, worker, number)
            ep = record_episode(
                env, policy, seed=episode_seed(args.seed, worker, number),
                max_steps=min(args.max_episode_steps, budget - steps),
                state_every=args.state_every, frames=args.frames,
                agent=args.agent, worker=worker, number=number,
                **({"ppo_model": str(args.ppo_model)} if args.agent == "ppo" else {}),
            )
            save_episode(ep, episodes_dir / name)
            steps, number = steps + len(ep), number + 1
            progress.put(("steps", worker, len(ep)))
            if not mp.parent_process().is_alive():  # the main process was killed
                break
        env.close()
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; the main process reports it
        raise SystemExit(130) from None
    except Exception as e:  # shown by the main process, which stops the run
        progress.put(("error", worker, f"{type(e).__name__}: {e}"))
        raise SystemExit(1) from None


# -- main ---------------------------------------------------------------------------------

def check_inputs(args: Args) -> None:
    """Fail early, with a message, on anything that would make every worker fail."""
    get_spec(args.env)  # unknown id -> UnknownEnvError listing the known ones
    if args.steps < 1 or args.workers < 1 or args.max_episode_steps < 1 or args.state_every < 1:
        raise RecordError("--steps, --workers, --max-episode-steps and --state-every must be >= 1")
    if args.agent == "ppo":
        if args.ppo_model is None:
            raise RecordError("--agent ppo needs --ppo-model PATH.zip (from agents/train_ppo.py)")
        if not Path(args.ppo_model).is_file():
            raise RecordError(f"PPO model {args.ppo_model} does not exist; train one with "
                              f"`python agents/train_ppo.py --env {args.env} --out PATH.zip`")
    elif args.ppo_model is not None:
        raise RecordError(f"--ppo-model is only for --agent ppo, not {args.agent}")
    if args.agent == "scripted":
        try:
            scripted_policy(args.env, get_spec(args.env).n_actions)
        except ValueError as e:
            raise RecordError(str(e)) from None
    make_real(args.env).close()  # missing ROM -> RomNotFoundError that says how to import it


def lock_folder(out: Path) -> int:
    """Make sure no other record.py writes to `out`; the lock lasts as long as this process."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".record.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RecordError(f"another record.py is writing to {out}; wait for it or stop it") \
            from None
    return fd


def check_folder(args: Args) -> int:
    """Check OUT holds only this env's episodes (removing leftover temp folders).

    Returns the steps of this run's episodes already on disk."""
    out = Path(args.out)
    episodes_dir = out / "episodes"
    if (out / INDEX).exists() or episodes_dir.is_dir():
        try:
            env_id = Dataset.reindex(out)["env_id"]  # also removes .tmp-* leftovers
        except ValueError as e:
            raise RecordError(f"{out} mixes games: {e}") from None
        if env_id not in (None, args.env):
            raise RecordError(f"{out} holds episodes of {env_id}, not {args.env}; "
                              "record into another folder")
    done = completed_episodes(episodes_dir, run_prefix(args))
    workers = {int(m.group(1)) for n in done if (m := re.search(r"-w(\d+)-\d+$", n))}
    if workers and max(workers) >= args.workers:
        raise RecordError(
            f"{out} holds episodes of this agent and seed from worker {max(workers)}, recorded "
            f"with more workers; resume with the same --workers as before")
    return sum(done.values())


def run_workers(args: Args, already: int) -> list[str]:
    """Start the workers, show their progress, wait for them; returns their errors."""
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    procs = [ctx.Process(target=work, args=(args, w, progress), daemon=True)
             for w in range(args.workers)]
    for p in procs:
        p.start()
    errors: list[str] = []
    bar = tqdm(total=args.steps, initial=already, unit="step",
               desc=f"{args.env} {args.agent}", dynamic_ncols=True)

    def handle(message: tuple[str, int, object]) -> None:
        kind, worker, value = message
        if kind == "steps":
            bar.update(value)
            return
        errors.append(f"worker {worker}: {value}")
        for p in procs:  # a failed worker stops the run; finished episodes stay
            p.terminate()

    try:
        while any(p.is_alive() for p in procs):
            try:
                handle(progress.get(timeout=0.2))
            except queue.Empty:
                pass
        while True:  # what the last workers sent just before they exited
            try:
                handle(progress.get(timeout=0.1))
            except queue.Empty:
                break
    finally:
        bar.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    if not errors and any(p.exitcode != 0 for p in procs):
        errors.append(f"a worker died (exit codes {[p.exitcode for p in procs]})")
    return errors


def record(args: Args) -> None:
    check_inputs(args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise RecordError(f"--out {args.out} is a file, not a folder")
    lock_folder(Path(args.out))
    already = check_folder(args)
    (Path(args.out) / "episodes").mkdir(parents=True, exist_ok=True)
    if already >= args.steps:
        print(f"{args.out} already holds {already} steps of this run (--steps {args.steps})")
        errors = []
    else:
        errors = run_workers(args, already)
    index = Dataset.reindex(args.out)
    if errors:
        raise RecordError("recording stopped (finished episodes are kept; rerun to resume):\n"
                          + "\n".join(errors))
    ds = Dataset(args.out)
    mine = [e for e in ds.episodes if e.name.startswith(run_prefix(args))]
    print(f"{args.out}: {len(ds)} episodes, {ds.num_steps()} steps of {index['env_id']} "
          f"(this run: {len(mine)} episodes, {sum(e.length for e in mine)} steps)")
    for split in ("train", "test"):
        print(f"  {split}: {len(ds.split(split))} episodes, {ds.num_steps(split)} steps")


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` stops the workers and keeps what is finished, as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        record(args)
    except KeyboardInterrupt:
        if (Path(args.out) / "episodes").is_dir():
            Dataset.reindex(args.out)
        print("interrupted; finished episodes are kept, rerun the command to resume",
              file=sys.stderr)
        return 130
    except (RecordError, KeyError, FileNotFoundError, ValueError, OSError) as e:
        print(f"record.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
