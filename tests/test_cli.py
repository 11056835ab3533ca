"""neuralgym.cli: parse_args, the dataclass-driven parser every script uses; sibling_script."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from neuralgym.cli import parse_args, sibling_script

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class _Args:
    rate: float = dataclasses.field(default=0.5, metadata={"help": "about 1-2% more"})
    sizes: tuple[int, ...] = dataclasses.field(default=(1, 2), metadata={"help": "sizes"})
    fast: bool = False


def test_help_text_with_a_percent_sign_prints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_args(_Args, ["--help"])
    assert e.value.code == 0
    assert "about 1-2% more" in capsys.readouterr().out


def test_values_are_typed() -> None:
    a = parse_args(_Args, ["--rate", "0.25", "--sizes", "3", "4", "--fast"])
    assert a == _Args(rate=0.25, sizes=(3, 4), fast=True)


def test_every_script_help_is_printable(run_script) -> None:
    scripts = sorted(p for d in ("agents", "benchmarks", "training")
                     for p in (ROOT / d).glob("*.py")
                     if re.search(r"\bparse_args\(", p.read_text()))
    assert len(scripts) >= 10
    for script in scripts:
        r = run_script(script, "--help")
        assert r.returncode == 0, f"{script.name} --help failed:\n{r.stderr[-2000:]}"
        assert "usage:" in r.stdout


def test_sibling_script_imports_the_script_beside_the_file(tmp_path):
    (tmp_path / "helper_for_sibling_test.py").write_text("VALUE = 41 + 1\n")
    module = sibling_script(str(tmp_path / "caller.py"), "helper_for_sibling_test")
    assert module.VALUE == 42
    assert str(tmp_path.resolve()) in sys.path
    with pytest.raises(ModuleNotFoundError):
        sibling_script(str(tmp_path / "caller.py"), "no_such_script_beside_it")
