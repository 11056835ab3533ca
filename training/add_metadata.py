"""Give a world-model folder the metadata variables its game's spec gained since it was trained.

    python training/add_metadata.py --model checkpoints/demonattack --cache runs/da-meta

A game's metadata can gain a variable (DemonAttack's hit_timer, a RAM byte that tells a hit
a step before the screen shows it). The folder's g_phi (its `metadata` component) names the
variables its models read; every variable of the game's spec (`neuralgym.games`) missing
there is added, where the spec has it:

- g_phi (`with_variables`) predicts a new variable as a copy of its last value, and keeps its
  weights for the others;
- each denoiser component that reads metadata (`Denoiser.with_metadata`) reads it with zero
  input weights,

so the folder dreams what it did until the next training run (train_metadata.py,
train_denoiser.py, which fine-tune the folder as usual) teaches both to use it. A new
variable's kind comes from the spec; its classes and normalisation from CACHE, a latent
cache of the game recorded with the new spec (with or without latents: prepare_latents.py
without --model reads no frames). The folder is rewritten through a working copy beside it
and export_model.py (large tensors in float16, the folder replaced by a finished copy), and
its config.json's "training" notes say what was added.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from neuralgym.cli import parse_args
from neuralgym.games import UnknownEnvError, get_spec
from neuralgym.games import class_counts as game_class_counts
from neuralgym.latents import LatentCache
from neuralgym.model_folder import ModelFolder, ModelFolderError
from neuralgym.models.denoiser import Denoiser
from neuralgym.models.metadata import (
    MetadataConfig,
    MetadataPredictor,
    metadata_stats,
    with_variables,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_model import Args as ExportArgs  # noqa: E402
from export_model import export  # noqa: E402


@dataclass
class Args:
    """Add the game's new metadata variables to a world-model folder."""

    model: Path = field(metadata={"help": "world-model folder (rewritten in place)"})
    cache: str = field(metadata={
        "help": "latent cache of the game with the new variables (prepare_latents.py; "
                "no latents needed), for their classes and normalisation"})


def add_metadata(args: Args) -> list[str]:
    """The names of the variables added (none where the folder has them all)."""
    folder = ModelFolder(args.model)
    try:
        config = folder.read_config()
        g_config = folder.component_config("metadata", MetadataConfig)
    except ModelFolderError as e:
        raise SystemExit(f"error: {e}") from None
    env_id = config.get("env_id", "")
    try:
        spec = get_spec(env_id)
    except UnknownEnvError as e:
        raise SystemExit(f"error: {args.model}: {e}") from None
    old, names = list(g_config.metadata_names), list(spec.metadata_names)
    gone = [n for n in old if n not in names]
    if gone:
        raise SystemExit(f"error: {args.model}'s g_phi reads {gone}, which {env_id}'s spec no "
                         "longer has; train a new model")
    added = [n for n in names if n not in old]
    if not added:
        print(f"{args.model} already reads every variable of {env_id}")
        return []
    try:
        cache = LatentCache(args.cache)
    except (FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    if list(cache.info.get("metadata_names") or []) != names:
        raise SystemExit(f"error: {args.cache} holds {cache.info.get('metadata_names')}, not "
                         f"{env_id}'s {names}: record the game again (agents/record.py) and "
                         "prepare its cache")
    kinds = tuple(v.kind for v in spec.metadata)
    stats = metadata_stats(cache, kinds, game_class_counts(env_id, names))

    g_phi = MetadataPredictor(g_config)
    folder.load_component("metadata", g_phi)
    try:
        g_phi = with_variables(g_phi, names, kinds, stats.num_classes, stats.mean, stats.std,
                               stats.integer)
    except ValueError as e:
        raise SystemExit(f"error: {args.model}: {e}") from None
    columns = [old.index(n) if n in old else None for n in names]
    denoisers = {}
    for name in config["components"]:
        if name.startswith("denoiser"):
            model = Denoiser.from_folder(folder, name)
            if model.config.metadata_dim:
                if model.config.metadata_dim != len(old):
                    raise SystemExit(f"error: {args.model}'s {name} reads "
                                     f"{model.config.metadata_dim} metadata variables, its "
                                     f"g_phi {len(old)}")
                denoisers[name] = model.with_metadata(columns)

    # a copy rewritten, then exported over the folder (float16 storage, atomic rename)
    work = args.model.with_name(f".add-metadata-{args.model.name}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.model, work)
    out = ModelFolder(work)
    out.save_component("metadata", g_phi, g_phi.config)
    for name, model in denoisers.items():
        out.save_component(name, model, model.config)
    export(ExportArgs(model=work, out=args.model, note=(
        f"add_metadata.py: {', '.join(added)} added to g_phi and "
        f"{', '.join(denoisers) or 'no denoiser'} at zero weights (normalisation from "
        f"{len(cache.metadata)} frames of {Path(args.cache).name})")))
    shutil.rmtree(work)
    print(f"{args.model}: added {added} to g_phi and to "
          f"{', '.join(denoisers) or 'no denoiser (none reads metadata)'}")
    return added


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    add_metadata(parse_args(Args))
