"""How differently a PPO policy acts on the dream's frames than on the real game's.

A policy trained in the dream sees the world model's decoded frames; scored in the real game it
sees the emulator's. This script measures how much that difference alone changes what the
policy does, on recorded real play (agents/record.py), state by state. For each sampled step t
of a test episode it builds the policy's input (the last 4 preprocessed frames, as
`PPOPolicy.observe`) from

- `real`: the recorded frames o_{t-3} .. o_t;
- `recon`: each of them encoded by the model's VAE and decoded by its frame decoder (what a
  dream shows at best: the autoencoder's floor);
- `dream-H` (H in --horizons): the frames the model dreams of o_{t-H+1} .. o_t from the real
  frames up to o_{t-H} and the recorded actions (closed loop, its own metadata), the older
  frames of the stack real (H < 4);
- `previous`: the real stack one step earlier (o_{t-4} .. o_{t-1}), a scale: how much the
  policy's output moves from one step to the next.

and reports, against `real`, the mean total-variation distance between the policy's action
distributions, the fraction of steps where the most likely action is the same, and the mean
probability that an action drawn from each is the same (sum_a p_a q_a), with 95% bootstrap
CIs over the steps; the last beside its value for `real` against itself. The dreams of
--batch-size sampled steps are rolled out together.

    python benchmarks/policy_gap.py --model checkpoints/pong --data runs/pong-dream-agent \\
        --policy dream.zip --windows 256 --horizons 1 4 16 --json gap.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neuralgym.data import Dataset, Episode  # noqa: E402
from neuralgym.metrics import bootstrap_ci  # noqa: E402
from neuralgym.policies import PPO_FRAME_STACK, PPOPolicy, preprocess_frame  # noqa: E402
from neuralgym.world_model import WorldModel  # noqa: E402


def stack(frames: np.ndarray) -> np.ndarray:
    """(4, H, W, 3) uint8 frames -> the policy's input (4, 84, 84) uint8, frame by frame with
    `preprocess_frame` as `PPOPolicy.observe` does in the real game (`preprocess_frames`, the
    batched form, may round a pixel one grey level apart)."""
    return np.stack([preprocess_frame(f) for f in frames])


def compare(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Action distributions p (the real frames') and q (n_actions,) -> the gap measures."""
    return {"tv": 0.5 * float(np.abs(p - q).sum()),
            "same_argmax": float(np.argmax(p) == np.argmax(q)),
            "same_sample": float(p @ q)}


def windows(data: Dataset, split: str, count: int, history: int, longest: int,
            rng: np.random.Generator) -> list[tuple[Episode, int]]:
    """`count` (episode, t) pairs, uniformly over the steps with `history` real frames before
    the earliest dreamed one (t - longest) and a full stack one step earlier; each episode
    loaded once (memory-mapped) and shared by its pairs."""
    pool = []
    for ref in data.split(split):
        ep = data.load(ref)
        if not ep.has_frames:
            continue
        first = history - 1 + longest  # o_{t-longest} has history-1 frames before it
        pool += [(ep, t) for t in range(max(first, PPO_FRAME_STACK), len(ep) + 1)]
    if not pool:
        raise SystemExit(f"no {split} episode of {data.root} has {history + longest} frames; "
                         "record longer episodes (agents/record.py) or lower --horizons")
    pick = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[i] for i in sorted(pick)]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="world-model folder")
    ap.add_argument("--data", required=True, help="recorded real play (agents/record.py)")
    ap.add_argument("--policy", required=True, help="PPO .zip (agents/train_ppo.py)")
    ap.add_argument("--split", default="all", choices=["train", "test", "all"])
    ap.add_argument("--windows", type=int, default=256, help="steps sampled")
    ap.add_argument("--horizons", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--denoising-steps", type=int, default=None,
                    help="the sampler's steps (default: the model's)")
    ap.add_argument("--batch-size", type=int, default=16,
                    help="sampled steps whose dreams are rolled out together")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if any(h < 1 for h in args.horizons):
        ap.error(f"--horizons must be >= 1, got {args.horizons}")
    if args.batch_size < 1:
        ap.error(f"--batch-size must be >= 1, got {args.batch_size}")
    for flag, path in (("--model", args.model), ("--data", args.data),
                       ("--policy", args.policy)):
        if not Path(path).exists():
            ap.error(f"{flag} {path} does not exist")

    model = WorldModel.from_pretrained(args.model, device=args.device)
    if args.denoising_steps is not None:
        model.steps = args.denoising_steps
    policy = PPOPolicy(args.policy)
    data = Dataset(args.data)
    rng = np.random.default_rng(args.seed)
    longest = max(args.horizons, default=0)
    picks = windows(data, args.split, args.windows, model.history, longest, rng)

    rows: dict[str, list[dict[str, float]]] = {}
    self_same = []
    for b0 in tqdm(range(0, len(picks), args.batch_size), desc="batches", unit="batch"):
        batch = picks[b0 : b0 + args.batch_size]
        reals = np.stack([np.array(ep.frames[t - PPO_FRAME_STACK + 1 : t + 1])
                          for ep, t in batch])  # (B, 4, H, W, 3): o_{t-3} .. o_t
        probs = [policy.action_probs(stack(f)) for f in reals]
        self_same += [float(p @ p) for p in probs]
        variants = {"previous": [np.asarray(ep.frames[t - PPO_FRAME_STACK : t])
                                 for ep, t in batch]}
        with torch.no_grad():
            z = model.vae.encode(torch.from_numpy(reals.reshape(-1, *reals.shape[2:]))
                                 .to(model.device))
            variants["recon"] = list(model.decoder.decode(z).cpu().numpy()
                                     .reshape(reals.shape))
        for h in args.horizons:
            # the dreams of all the batch's steps at once: from the real frames up to
            # o_s (s = t - h, history frames), under the recorded actions a_s .. a_{t-1}
            spans = [(ep, t - h - model.history + 1, t - h, t) for ep, t in batch]
            dreamt, _ = model.rollout_with_metadata(
                np.stack([ep.frames[lo : s + 1] for ep, lo, s, _ in spans]),
                np.stack([ep.metadata[lo : s + 1] for ep, lo, s, _ in spans]),
                np.stack([ep.actions[lo:s] for ep, lo, s, _ in spans]),
                np.stack([ep.actions[s:t] for ep, _, s, t in spans]),
                seed=args.seed * 100_003 + b0)  # (B, h, H, W, 3): o_{s+1} .. o_t
            variants[f"dream-{h}"] = [
                np.concatenate([real[: max(0, PPO_FRAME_STACK - h)], dream[-PPO_FRAME_STACK:]])
                for real, dream in zip(reals, dreamt, strict=True)]
        for name, stacks in variants.items():
            rows.setdefault(name, []).extend(
                compare(p, policy.action_probs(stack(frames)))
                for p, frames in zip(probs, stacks, strict=True))

    def summary(values: list[float]) -> dict[str, float | list[float]]:
        lo, hi = bootstrap_ci(np.asarray(values), seed=args.seed)
        return {"mean": float(np.mean(values)), "ci95": [float(lo), float(hi)]}

    result = {
        "model": str(args.model), "data": str(args.data), "policy": str(args.policy),
        "split": args.split, "windows": len(picks), "horizons": args.horizons,
        "denoising_steps": model.steps, "seed": args.seed,
        "same_sample_real": summary(self_same),
        "variants": {name: {k: summary([r[k] for r in rs]) for k in rs[0]}
                     for name, rs in rows.items()},
    }
    print(f"{len(picks)} steps; an action drawn twice on the real frames is the same "
          f"{result['same_sample_real']['mean']:.3f} of the time")
    for name, v in result["variants"].items():
        print(f"{name:>10}: TV {v['tv']['mean']:.3f} {v['tv']['ci95']}, same most likely action "
              f"{v['same_argmax']['mean']:.3f}, same drawn action {v['same_sample']['mean']:.3f}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
