"""training/device_tree.sh in a scratch git repository: `keep` leaves the other shipped models
out of what git tracks (files kept on disk, listed in .git/info/exclude), `size` counts what
would travel, `restore` brings everything back; bad input is refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "training").mkdir()
    shutil.copy(ROOT / "training" / "device_tree.sh", tmp_path / "training")
    for game, size in (("breakout", 1000), ("pong", 3000), ("airstriker", 5000)):
        (tmp_path / "neuralgym" / "shipped" / game).mkdir(parents=True)
        (tmp_path / "neuralgym" / "shipped" / game / "w.safetensors").write_bytes(b"x" * size)
    (tmp_path / "checkpoints" / "demonattack").mkdir(parents=True)  # committed, not shipped
    (tmp_path / "checkpoints" / "demonattack" / "w.safetensors").write_bytes(b"x" * 700)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)  # earlier runs' results
    (tmp_path / "benchmarks" / "results" / "r.json").write_text("{}")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "models")
    return tmp_path


def tool(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / "training" / "device_tree.sh"), *args],
                          capture_output=True, text=True)


def test_keep_size_restore(repo: Path) -> None:
    full = tool(repo, "size").stdout
    r = tool(repo, "keep", "breakout")
    assert r.returncode == 0, r.stderr
    tracked = git(repo, "ls-files").split()
    assert "neuralgym/shipped/breakout/w.safetensors" in tracked
    assert not [p for p in tracked if "pong" in p or "airstriker" in p or "demonattack" in p]
    assert "benchmarks/results/r.json" not in tracked and "left out of the tree: " \
        "benchmarks/results" in r.stdout
    untracked = git(repo, "ls-files", "--others", "--exclude-standard").split()
    assert untracked == []  # ignored, so not copied either
    assert (repo / "neuralgym/shipped/pong/w.safetensors").stat().st_size == 3000  # on disk
    kept = tool(repo, "size").stdout
    assert full != kept and "limit 64" in kept
    r = tool(repo, "restore")
    assert r.returncode == 0 and git(repo, "status", "--porcelain") == ""
    assert "device_tree.sh" not in (repo / ".git" / "info" / "exclude").read_text()
    # a game with a checkpoint but no shipped model is kept by name like the others
    r = tool(repo, "keep", "breakout", "demonattack")
    assert r.returncode == 0, r.stderr
    tracked = git(repo, "ls-files").split()
    assert "checkpoints/demonattack/w.safetensors" in tracked and "left out of the tree: " \
        "neuralgym/shipped/pong" in r.stdout
    assert tool(repo, "restore").returncode == 0 and git(repo, "status", "--porcelain") == ""
    # one folder of a game with both: shipped/GAME or checkpoints/GAME keeps that one only
    (repo / "checkpoints" / "pong").mkdir()
    (repo / "checkpoints" / "pong" / "w.safetensors").write_bytes(b"y" * 3000)
    git(repo, "add", "checkpoints/pong")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "pong checkpoint")
    r = tool(repo, "keep", "checkpoints/pong")
    assert r.returncode == 0, r.stderr
    tracked = git(repo, "ls-files").split()
    assert [p for p in tracked if p.endswith(".safetensors")] == ["checkpoints/pong/w.safetensors"]
    r = tool(repo, "keep", "pong")  # by game name: both folders stay
    tracked = git(repo, "ls-files").split()
    assert {"checkpoints/pong/w.safetensors", "neuralgym/shipped/pong/w.safetensors"} <= set(
        tracked)
    assert tool(repo, "restore").returncode == 0 and git(repo, "status", "--porcelain") == ""


def test_bad_input(repo: Path) -> None:
    r = tool(repo, "keep", "sonic")
    assert r.returncode == 2 and "no neuralgym/shipped/sonic or checkpoints/sonic" in r.stderr
    r = tool(repo, "keep", "checkpoints/pong")
    assert r.returncode == 2 and "no folder checkpoints/pong" in r.stderr
    (repo / "training" / "new.txt").write_text("x")
    git(repo, "add", "training/new.txt")
    r = tool(repo, "keep", "breakout")
    assert r.returncode == 2 and "other changes are staged" in r.stderr
    assert "pong" in git(repo, "ls-files")
    assert tool(repo, "keep").returncode == 2 and tool(repo, "nope").returncode == 2
