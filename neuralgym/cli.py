"""Command-line arguments from a dataclass: each field a `--flag`, its help from metadata;
and `sibling_script`, one repository script importing another beside it.

    @dataclass
    class Args:
        steps: int = field(default=1000, metadata={"help": "optimiser steps"})

    args = parse_args(Args)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(element type, is_list) of a field type; Optional[X] -> X."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple, Sequence):
        return typing.get_args(tp)[0], True
    return tp, False


def parse_args(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """Parse `argv` (default: sys.argv) into an instance of the dataclass `cls`."""
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # dataclass's generated doc: use the script's
        doc = (sys.modules[cls.__module__].__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp, is_list = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        # argparse %-formats help text: a literal % must be doubled
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", " ").replace("%", "%%")}
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs["default"] = f.default_factory()
        else:
            kwargs["required"] = True
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = tp
            if is_list:
                kwargs["nargs"] = "+"
        parser.add_argument(flag, dest=f.name, **kwargs)
    ns = parser.parse_args(argv)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        v = getattr(ns, f.name)
        if isinstance(v, list) and typing.get_origin(_strip(hints[f.name])) is tuple:
            v = tuple(v)
        values[f.name] = v
    return cls(**values)


def _strip(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def sibling_script(file: str, name: str) -> types.ModuleType:
    """The script `name`.py in the folder of `file` as a module (benchmarks/ and training/ are
    not packages), so that one script uses another's functions rather than a copy of them."""
    here = str(Path(file).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module(name)
