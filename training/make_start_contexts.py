"""Write the start contexts a dream env resets to into a world-model folder.

    python training/make_start_contexts.py --data runs/breakout --model runs/wm --count 64

Takes `--count` steps t evenly spread over the episodes of a dataset split (one random offset
from `--seed`), and for each the L frames o_{t-L+1} .. o_t, their metadata and the L-1 actions
between them (L = the model's context, or `--length`). Writes them atomically to
MODEL/start_contexts.safetensors (neuralgym/start_contexts.py), replacing an older file.
`NeuralRetroEnv.reset()` picks one of them with its np_random.

Size: count x L x H x W x 3 bytes (64 x 4 Breakout frames: 26 MB); a file to commit must
stay under 16 MiB, so use a smaller --count there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neuralgym.cli import parse_args
from neuralgym.data import Dataset
from neuralgym.model_folder import ModelFolder
from neuralgym.start_contexts import contexts_from_dataset, save_start_contexts


@dataclass
class Args:
    """Write start contexts (real frames a dream starts from) into a world-model folder."""

    data: str = field(metadata={"help": "dataset folder (agents/record.py)"})
    model: str = field(metadata={"help": "world-model folder to write start_contexts.safetensors "
                                         "into"})
    count: int = field(default=64, metadata={"help": "number of start contexts"})
    seed: int = field(default=0, metadata={"help": "seed of the offset of the evenly spread steps"})
    split: str = field(default="train", metadata={"help": "dataset split to take them from",
                                                  "choices": ["train", "test", "all"]})
    length: int = field(default=0, metadata={
        "help": "frames per context (0: the model's context; more gives g_phi a longer past, "
                "up to the model's history)"})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(Args, argv)
    if args.count < 1:
        raise SystemExit(f"--count must be at least 1, got {args.count}")
    dataset = Dataset(args.data)

    # The model says how many frames a dream starts from, and which game it is.
    from neuralgym.world_model import WorldModel  # its inference methods run without autograd

    config = ModelFolder(args.model).read_config()
    if config.get("env_id") != dataset.env_id:
        raise SystemExit(f"{args.model} is a model of {config.get('env_id')}, the dataset "
                         f"{args.data} is {dataset.env_id}")
    model = WorldModel.from_pretrained(args.model)
    length = args.length or model.context
    if length < model.context:
        raise SystemExit(f"--length {length} is shorter than the model's context "
                         f"({model.context} frames)")

    contexts = contexts_from_dataset(dataset, length, args.count, args.split, args.seed)
    path = save_start_contexts(args.model, contexts)
    size = path.stat().st_size
    print(f"wrote {len(contexts)} start contexts of {length} frames to {path} "
          f"({size / 2**20:.1f} MiB)")
    if len(contexts) < args.count:
        print(f"note: the {args.split!r} split has only {len(contexts)} steps with {length} "
              "frames before them")
    if size >= 16 * 2**20:
        print("note: over 16 MiB, too big to commit; use a smaller --count for a shipped model")


if __name__ == "__main__":
    main()
