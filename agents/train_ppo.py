r"""Train a stable-baselines3 PPO agent on a game, to record better-than-random data with it.

    python agents/train_ppo.py --env NeuralBreakout-v0 --steps 10000000 --out runs/ppo-breakout.zip
    python agents/record.py --env NeuralBreakout-v0 --agent ppo --ppo-model runs/ppo-breakout.zip \
        --steps 100000 --out runs/breakout-ppo

The agent sees `neuralgym.policies.wrap_ppo_observation`: grayscale 84x84 frames, the last 4
stacked (the same preprocessing `PPOPolicy` applies when recording). Rewards are clipped to
their sign for training (--clip-rewards); the returns printed are the game's own.
Hyperparameters are cleanrl's `ppo_atari.py` (Atari PPO of Schulman et al. 2017): 128 steps
per env per rollout, minibatches of 256, 4 epochs, learning rate 2.5e-4 annealed linearly to
0, clip 0.1, entropy 0.01, GAE lambda 0.95, gamma 0.99. The model is written atomically.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from neuralgym import make_real
from neuralgym.cli import parse_args
from neuralgym.games import get_spec
from neuralgym.policies import wrap_ppo_observation


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
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda"})
    log_every: int = field(default=10, metadata={"help": "print training stats every N rollouts"})


def make_game(env_id: str) -> gym.Env:
    """The env PPO plays, with the game's own rewards and time limit.

    Today the real game. Training inside the dream (a Neural id served by a world model)
    plugs in here: the rest of the script only needs a gym.Env with the game's spaces.
    """
    return make_real(env_id)


def clip_reward(env: gym.Env) -> gym.Env:
    return gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))


def train(args: Args) -> None:
    get_spec(args.env)  # unknown id -> UnknownEnvError listing the known ones
    out = Path(args.out)
    if out.suffix != ".zip":
        raise ValueError(f"--out must end in .zip, got {out}")
    if min(args.steps, args.n_envs, args.n_steps, args.batch_size, args.n_epochs) < 1:
        raise ValueError("--steps, --n-envs, --n-steps, --batch-size and --n-epochs must be >= 1")
    make_game(args.env).close()  # missing ROM -> a message that says how to import it

    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    def wrap(env: gym.Env) -> gym.Env:  # outside make_vec_env's Monitor: returns stay raw
        return wrap_ppo_observation(clip_reward(env) if args.clip_rewards else env)

    venv = make_vec_env(
        make_game, n_envs=args.n_envs, seed=args.seed, env_kwargs={"env_id": args.env},
        wrapper_class=wrap, vec_env_cls=SubprocVecEnv if args.n_envs > 1 else DummyVecEnv,
    )
    lr = args.learning_rate
    model = PPO(
        "CnnPolicy", venv,
        n_steps=args.n_steps,
        batch_size=min(args.batch_size, args.n_steps * args.n_envs),
        n_epochs=args.n_epochs,
        learning_rate=lambda progress_remaining: lr * progress_remaining,
        clip_range=args.clip_range,
        ent_coef=args.ent_coef,
        vf_coef=0.5,
        max_grad_norm=0.5,
        gamma=0.99,
        gae_lambda=0.95,
        seed=args.seed,
        device=args.device,
        verbose=1,
    )
    print(f"training PPO on {args.env} for {args.steps} steps, {args.n_envs} envs, "
          f"device {model.device}", flush=True)
    model.learn(total_timesteps=args.steps, log_interval=args.log_every)
    venv.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        model.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    returns = [ep["r"] for ep in model.ep_info_buffer]
    if returns:
        print(f"mean episode return {np.mean(returns):.2f} over the last {len(returns)} "
              f"episodes")
    else:
        print(f"mean episode return: no episode finished in {args.steps} steps")
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv)
    try:
        train(args)
    except KeyboardInterrupt:
        print("interrupted; no model written", file=sys.stderr)
        return 130
    except (KeyError, FileNotFoundError, ValueError, OSError) as e:
        print(f"train_ppo.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
