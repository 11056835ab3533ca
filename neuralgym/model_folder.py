"""A world-model folder on disk: `config.json` plus one safetensors file per component.

    DIR/config.json            {"format": 1, "env_id": ..., "components": {name: config dict}}
    DIR/<name>.safetensors     the weights of component <name> (vae, metadata, denoiser)

Every write is atomic (a temporary file renamed into place), so a folder is never half
written. Loading checks that the file is there, readable, and matches its config, and says
which file is wrong when it is not.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = 1
C = TypeVar("C")


class ModelFolderError(RuntimeError):
    """A world-model folder that is missing, incomplete, corrupt or mismatched."""


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config dataclass from JSON (lists become tuples where the field is a tuple)."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ModelFolderError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {k: tuple(v) if isinstance(v, list) and "tuple" in str(known[k].type) else v
              for k, v in data.items()}
    return cls(**kwargs)


class ModelFolder:
    """Read and write the components of a world-model folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    def read_config(self) -> dict[str, Any]:
        if not self.root.is_dir():
            raise ModelFolderError(f"world-model folder {self.root} does not exist")
        if not self.config_path.exists():
            raise ModelFolderError(f"{self.root} is not a world-model folder: no config.json")
        try:
            config = json.loads(self.config_path.read_text())
        except json.JSONDecodeError as e:
            raise ModelFolderError(f"{self.config_path} is corrupt: {e}") from None
        if config.get("format") != FORMAT:
            raise ModelFolderError(
                f"{self.config_path}: format {config.get('format')!r}; "
                f"this neuralgym reads {FORMAT}"
                " (retrain or convert the folder)"
            )
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-config.json.{os.getpid()}"
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, self.config_path)

    def update(self, **entries: Any) -> None:
        """Set top-level entries of config.json (e.g. env_id, sampler settings)."""
        config = self.read_config() if self.config_path.exists() else {"format": FORMAT,
                                                                        "components": {}}
        config.update(entries)
        self.write_config(config)

    def has(self, name: str) -> bool:
        if not self.config_path.exists():
            return False
        return name in self.read_config().get("components", {})

    def save_component(self, name: str, module: nn.Module, config: Any) -> None:
        """Write `<name>.safetensors` and the component's config (a dataclass) atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        tmp = self.root / f".tmp-{name}.safetensors.{os.getpid()}"
        save_file(weights, tmp, metadata={"component": name})
        os.replace(tmp, self.root / f"{name}.safetensors")
        full = self.read_config() if self.config_path.exists() else {"format": FORMAT,
                                                                      "components": {}}
        full.setdefault("components", {})[name] = asdict(config)
        self.write_config(full)

    def component_config(self, name: str, cls: type[C]) -> C:
        components = self.read_config().get("components", {})
        if name not in components:
            raise ModelFolderError(
                f"{self.root} has no {name!r} component (it has: {', '.join(components) or 'none'})"
                f"; train it with training/train_{name}.py --out {self.root}"
            )
        return config_from_dict(cls, components[name])

    def load_component(self, name: str, module: nn.Module) -> nn.Module:
        """Load `<name>.safetensors` into `module` (built from the component's config)."""
        path = self.root / f"{name}.safetensors"
        weights = load_tensor_file(path)
        try:
            module.load_state_dict(weights)
        except RuntimeError as e:
            raise ModelFolderError(
                f"{path} does not match its config in {self.config_path}: {e}"
            ) from None
        return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file with the folder's error messages."""
    if not path.exists():
        raise ModelFolderError(f"{path} is missing")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFolderError(f"{path} is corrupt or truncated ({e})") from None
