r"""Train a stable-baselines3 PPO agent on a game (the real one, or its dream).

    python agents/train_ppo.py --env NeuralBreakout-v0 --steps 10000000 --out runs/ppo-breakout.zip
    python agents/record.py --env NeuralBreakout-v0 --agent ppo --ppo-model runs/ppo-breakout.zip \
        --steps 100000 --out runs/breakout-ppo

Inside the dream: --dream DIR (a world-model folder with start contexts) trains entirely in
the world model, all --n-envs dreams stepped by one batched model call
(`gym.make_vec(ENV, num_envs=N, model=DIR, device=...)` seen through
`neuralgym.sb3_vec_env.ppo_vec_env`), and the real game is only used to score the result:

    python agents/train_ppo.py --env NeuralBreakout-v0 --dream default \
        --device cuda --n-envs 64 --steps 2000000 --out runs/ppo-dream.zip
    python agents/evaluate_policy.py --env NeuralBreakout-v0 --policy runs/ppo-dream.zip \
        --episodes 30 --json runs/ppo-dream-real.json

(`--dream default` is the model shipped for --env, what `gym.make(ENV)` loads; or a folder.)

The learning curve, (step, mean return of the episodes that ended in each rollout) in the
env trained on (the dream's own returns with --dream), goes to OUT with the suffix
.curve.csv (runs/ppo-dream.curve.csv); `agents/evaluate_policy.py --curves ... --plot`
draws it.

The agent sees `neuralgym.policies.wrap_ppo_observation`: grayscale 84x84 frames, the last 4
stacked (the same preprocessing `PPOPolicy` applies when recording; in the dream the adapter
applies the same `preprocess_frame` and stacking, so a model trained in either plays both).
Rewards are clipped to their sign for training (--clip-rewards); the returns printed and
logged are the game's own. The dream's vector env resets a finished episode on the step after
its end, so in the dream each episode adds one reset step (reward 0, its action ignored;
see `neuralgym.sb3_vec_env`); --max-episode-steps cuts long dreams, which drift from the game.
Hyperparameters are cleanrl's `ppo_atari.py` (Atari PPO of Schulman et al. 2017): 128 steps
per env per rollout, minibatches of 256, 4 epochs, learning rate 2.5e-4 annealed linearly to
0, clip 0.1, entropy 0.01, GAE lambda 0.95, gamma 0.99. The model is written atomically.

Long runs: --save-every SECONDS also writes the model (atomically) during training, and
--resume continues the model at --out (weights, optimizer state, step count) up to --steps in
all, the learning rate annealed as in one uninterrupted run, so a run cut short (a time limit,
a lost machine) goes on where its last checkpoint left it:

    python agents/train_ppo.py --env NeuralPong-v0 --steps 2000000 --save-every 60 \
        --resume --out runs/ppo-pong.zip   # the same command, again, after an interruption
"""

from __future__ import annotations

import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.games import get_spec
from neuralgym.model_folder import ModelFolderError
from neuralgym.policies import wrap_ppo_observation
from neuralgym.start_contexts import StartContextsError


@dataclass
class Args:
    env: str = field(metadata={"help": "Neural env id of the game, e.g. NeuralBreakout-v0"})
    out: str = field(metadata={"help": "where to write the model (.zip)"})
    steps: int = field(default=10_000_000, metadata={"help": "total env steps to train for"})
    n_envs: int = field(default=8, metadata={"help": "games played in parallel (processes)"})
    seed: int = field(default=0, metadata={"help": "seed of the envs, the network and PPO"})
    n_steps: int = field(default=128, metadata={"help": "steps per env per rollout"})
    batch_size: int = field(default=256, metadata={"help": "minibatch size"})
    n_epochs: int = field(default=4, metadata={"help": "passes over each rollout"})
    learning_rate: float = field(default=2.5e-4, metadata={
        "help": "initial learning rate, annealed linearly to 0"})
    clip_range: float = field(default=0.1, metadata={"help": "PPO clipping coefficient"})
    ent_coef: float = field(default=0.01, metadata={"help": "entropy bonus coefficient"})
    clip_rewards: bool = field(default=True, metadata={
        "help": "train on the sign of the reward (the printed returns stay unclipped)"})
    device: str = field(default="auto", metadata={
        "help": "torch device of PPO and (--dream) of the world model: auto (cuda when there "
                "is one), cpu, cuda"})
    log_every: int = field(default=10, metadata={"help": "print training stats every N rollouts"})
    dream: str | None = field(default=None, metadata={
        "help": "train inside the dream: a world-model folder of --env with start contexts, "
                "or 'default' for the model shipped for --env (default: the real game)"})
    denoising_steps: int | None = field(default=None, metadata={
        "help": "--dream: sampler steps per model call (default: the folder's)"})
    max_episode_steps: int | None = field(default=None, metadata={
        "help": "--dream: cut (truncate) dream episodes after this many steps (default: the "
                "game's time limit)"})
    cuda_graphs: bool | None = field(default=None, metadata={
        "help": "--dream: replay the world model from CUDA graphs (default: on with CUDA)"})
    bf16_weights: bool = field(default=False, metadata={
        "help": "--dream: hold the denoiser's backbone and fast decoder in bf16 "
                "(faster on CUDA, about 1-2% more MSE at short horizons)"})
    sample_metadata: bool = field(default=False, metadata={
        "help": "--dream: draw g_phi's scores and lives from its predicted distributions "
                "(WorldModel.sample_metadata), so rewards come at the rate g_phi gives them"})
    max_seconds: float = field(default=0.0, metadata={
        "help": "stop after this many seconds of training, at the end of a rollout, and "
                "write the model as it is then (0: train for --steps)"})
    save_every: float = field(default=0.0, metadata={
        "help": "also write the model to --out (atomically) at the first rollout end after "
                "every this many seconds, a checkpoint --resume continues from (0: only at "
                "the end)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the PPO model at --out (weights, optimizer state, step count) up to "
                "--steps in all, with this command's settings, appending to its learning "
                "curve; without a model at --out, start afresh"})


def make_game(env_id: str) -> gym.Env:
    """The real game PPO plays, with the game's own rewards and time limit."""
    return make_real(env_id)


def clip_reward(env: gym.Env) -> gym.Env:
    return gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_real_venv(args: Args):
    """--n-envs copies of the real game (processes), with PPO's observation."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    make_game(args.env).close()  # missing ROM -> a message that says how to import it

    def wrap(env: gym.Env) -> gym.Env:  # outside make_vec_env's Monitor: returns stay raw
        return wrap_ppo_observation(clip_reward(env) if args.clip_rewards else env)

    return make_vec_env(
        make_game, n_envs=args.n_envs, seed=args.seed, env_kwargs={"env_id": args.env},
        wrapper_class=wrap, vec_env_cls=SubprocVecEnv if args.n_envs > 1 else DummyVecEnv,
    )


def make_dream_venv(args: Args, device: str):
    """--n-envs dreams of the world model --dream, one batched model call a step, with the
    observation the real game gives PPO (`preprocess_frame`, 4 frames stacked)."""
    from neuralgym.sb3_vec_env import ppo_vec_env

    kwargs = {}
    if args.max_episode_steps is not None:
        kwargs["max_episode_steps"] = args.max_episode_steps
    graphs = device.startswith("cuda") if args.cuda_graphs is None else args.cuda_graphs
    venv = gym.make_vec(args.env, num_envs=args.n_envs, model=args.dream, device=device,
                        denoising_steps=args.denoising_steps, cuda_graphs=graphs,
                        bf16_weights=args.bf16_weights, sample_metadata=args.sample_metadata,
                        **kwargs)
    if venv.unwrapped.start_contexts is None:  # reset() would fail later, inside PPO
        from neuralgym.start_contexts import StartContextsError, start_contexts_path

        raise StartContextsError(
            f"{start_contexts_path(args.dream)} is missing: the dreams have no real frames to "
            f"start from; write it with `python training/make_start_contexts.py --data DATASET "
            f"--model {args.dream}`")
    return ppo_vec_env(venv, clip_rewards=args.clip_rewards)


CURVE_HEADER = "step,mean_return,episodes,wall_s"


def save_model(model: Any, out: Path) -> None:
    """Write the SB3 model to `out` (.zip) atomically: a temp file beside it, then a rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        model.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete the temp files `save_model` left beside `out` in runs that were killed mid-write
    (their process is gone); returns them."""
    def gone(pid: str) -> bool:
        try:
            os.kill(int(pid), 0)  # signal 0: is it there?
        except ProcessLookupError:
            return True
        except PermissionError:  # there, another user's
            pass
        return False

    stale = [tmp for tmp in out.parent.glob(f".tmp-*-{out.name}")
             if (pid := tmp.name[len(".tmp-"):-len(out.name) - 1]).isdigit() and gone(pid)]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def curve_seconds(path: Path) -> float | None:
    """The wall_s of the last row of the learning curve `path` (0 with no rows), or None when
    there is no curve with our header to continue."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    if not lines or lines[0] != CURVE_HEADER:
        return None
    return float(lines[-1].rsplit(",", 1)[1]) if len(lines) > 1 else 0.0


def curve_logger(path: Path, max_seconds: float = 0.0, save_every: float = 0.0,
                 out: Path | None = None, resume: bool = False):
    """An SB3 callback that, after each rollout, appends (step, mean return, episodes,
    seconds) of the episodes that ended during it (their "episode" infos: the game's own
    returns) to the CSV `path`; a rollout in which no episode ended adds no row. With
    `max_seconds` > 0, training stops at the first rollout's end after that many seconds.
    With `save_every` > 0, the model is written to `out` at the first rollout's end after
    every that many seconds. With `resume`, an existing curve is continued (its seconds
    carried on) instead of started afresh."""
    from stable_baselines3.common.callbacks import BaseCallback

    class CurveLogger(BaseCallback):
        def _on_training_start(self) -> None:
            self.returns: list[float] = []
            self.stop = False
            self.t0 = self.saved = time.time()
            done = curve_seconds(path) if resume else None
            self.offset = done or 0.0
            if done is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w") as f:
                    f.write(CURVE_HEADER + "\n")

        def _on_step(self) -> bool:
            if self.stop:
                return False
            self.returns += [float(i["episode"]["r"]) for i in self.locals["infos"]
                             if "episode" in i]
            return True

        def _on_rollout_end(self) -> None:
            if self.returns:
                with open(path, "a") as f:
                    f.write(f"{self.num_timesteps},{np.mean(self.returns):.6g},"
                            f"{len(self.returns)},"
                            f"{self.offset + time.time() - self.t0:.1f}\n")
            self.returns = []
            if save_every > 0 and out is not None and time.time() - self.saved >= save_every:
                save_model(self.model, out)
                self.saved = time.time()
            # checked at the next rollout's first step: a False from _on_step ends learn()
            # there, after this rollout's update
            self.stop = max_seconds > 0 and time.time() - self.t0 >= max_seconds

    return CurveLogger()


def curve_path(out: Path) -> Path:
    """Where the learning curve of the model `out` (.zip) goes: beside it, .curve.csv."""
    return out.with_suffix(".curve.csv")


def load_checkpoint(ppo: Any, out: Path, venv: Any, device: str, settings: dict[str, Any]
                    ) -> Any:
    """The PPO model saved at `out`, on `venv`, with this run's `settings` (which replace
    the saved ones); a file SB3 cannot read, or one of another game, is a ValueError saying
    what to do."""
    try:
        model = ppo.load(out, env=venv, device=device, custom_objects=settings)
    except (ValueError, KeyError, OSError, EOFError, RuntimeError, zipfile.BadZipFile) as e:
        raise ValueError(f"--resume: cannot continue {out} ({type(e).__name__}: {e}); move "
                         f"it away to start afresh") from e
    return model


def train(args: Args) -> None:
    get_spec(args.env)  # unknown id -> UnknownEnvError listing the known ones
    out = Path(args.out)
    if out.suffix != ".zip":
        raise ValueError(f"--out must end in .zip, got {out}")
    if min(args.steps, args.n_envs, args.n_steps, args.batch_size, args.n_epochs) < 1:
        raise ValueError("--steps, --n-envs, --n-steps, --batch-size and --n-epochs must be >= 1")
    for tmp in remove_stale_temps(out):
        print(f"removed {tmp}, left by a run killed while saving")
    if args.max_seconds < 0 or args.save_every < 0:
        raise ValueError(f"--max-seconds and --save-every must be >= 0, got "
                         f"{args.max_seconds} and {args.save_every}")
    if args.dream is None and (args.denoising_steps is not None
                               or args.max_episode_steps is not None
                               or args.cuda_graphs is not None or args.bf16_weights
                               or args.sample_metadata):
        raise ValueError("--denoising-steps, --max-episode-steps, --cuda-graphs, "
                         "--bf16-weights and --sample-metadata are for the dream; pass "
                         "--dream DIR")
    device = resolve_device(args.device)
    if args.dream == "default":
        from neuralgym.predictors import shipped_model

        args.dream = str(shipped_model(args.env))

    from stable_baselines3 import PPO

    if args.dream is not None:
        venv = make_dream_venv(args, device)
        where = f"the dream {args.dream}"
    else:
        venv = make_real_venv(args)
        where = "the real game"
    lr = args.learning_rate
    settings = dict(
        n_steps=args.n_steps,
        batch_size=min(args.batch_size, args.n_steps * args.n_envs),
        n_epochs=args.n_epochs,
        learning_rate=lambda progress_remaining: lr * progress_remaining,
        clip_range=args.clip_range,
        ent_coef=args.ent_coef,
    )
    resumed = args.resume and out.exists()
    if resumed:
        model = load_checkpoint(PPO, out, venv, device, settings)
        if model.num_timesteps >= args.steps:
            venv.close()
            print(f"{out} has {model.num_timesteps} steps, --steps {args.steps} reached; "
                  f"nothing to do")
            return
        print(f"resuming {out} at step {model.num_timesteps}", flush=True)
    else:
        model = PPO("CnnPolicy", venv, vf_coef=0.5, max_grad_norm=0.5, gamma=0.99,
                    gae_lambda=0.95, seed=args.seed, device=device, verbose=1, **settings)
    print(f"training PPO on {args.env} in {where} for {args.steps} steps, {args.n_envs} envs, "
          f"device {model.device}", flush=True)
    curve = curve_path(out)
    # resumed: learn() counts on from the model's steps, so the total (and the learning
    # rate's annealing) stays --steps
    model.learn(total_timesteps=args.steps - model.num_timesteps, log_interval=args.log_every,
                reset_num_timesteps=not resumed,
                callback=curve_logger(curve, args.max_seconds, args.save_every, out,
                                      resume=resumed))
    venv.close()

    save_model(model, out)
    if model.num_timesteps < args.steps:
        print(f"stopped after {args.max_seconds:g} s (--max-seconds), at step "
              f"{model.num_timesteps} of {args.steps}")
    returns = [ep["r"] for ep in model.ep_info_buffer]
    if returns:
        print(f"mean episode return {np.mean(returns):.2f} over the last {len(returns)} "
              f"episodes")
    else:
        print(f"mean episode return: no episode finished in {args.steps} steps")
    print(f"wrote {out} and its learning curve {curve}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    try:
        train(args)
    except KeyboardInterrupt:
        print("interrupted; no model written", file=sys.stderr)
        return 130
    except (KeyError, FileNotFoundError, ValueError, OSError, ModelFolderError,
            StartContextsError) as e:
        print(f"train_ppo.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
