"""README's "Train your own NeuralSonic" recipe, run command by command with Airstriker-Genesis
(which ships with stable-retro) in place of Sonic and tiny settings, so the recipe cannot rot."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tiny settings appended to each script's command (argparse keeps the last value of a flag).
TINY = {
    "agents/record.py": "--steps 240 --workers 2 --max-episode-steps 120 --state-every 10",
    "training/train_vae.py": "--steps 2 --batch-size 2 --block-out-channels 4 8 8 "
                             "--norm-num-groups 4 --latent-channels 4 --eval-frames 4 "
                             "--norm-frames 4 --checkpoint-every 2 --device cpu",
    "training/prepare_latents.py": "--batch-size 16 --device cpu",
    "training/train_metadata.py": "--steps 2 --batch-size 4 --hidden 8 --layers 1 --window 2 "
                                  "--latent-width 4 --latent-dim 8 --eval-windows 16 --device cpu",
    "training/train_denoiser.py": "--steps 2 --batch-size 2 --channels 8 16 --norm-groups 4 "
                                  "--heads 2 --token-dim 16 --layers-per-block 1 --context 2 "
                                  "--eval-windows 4 --eval-steps 1 --device cpu",
    "training/make_start_contexts.py": "--count 2",
    "benchmarks/paired_rollout.py": "--horizons 1 2 --episodes 1 --starts-per-episode 1 "
                                    "--split all",
}


def recipe() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Train your own NeuralSonic", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's NeuralSonic recipe has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_recipe_mentions_every_stage():
    text = "\n".join(recipe())
    for needle in ("stable_retro.import", "NeuralSonic-v0", *TINY, "gym.make('NeuralSonic-v0'"):
        assert needle in text, f"the recipe lost {needle}"


def test_recipe_runs_on_airstriker(tmp_path: Path):
    roms = tmp_path / "roms"
    roms.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for line in recipe():
        cmd = line.split("   #", 1)[0].strip()
        cmd = cmd.replace("NeuralSonic-v0", "NeuralAirstriker-v0")
        cmd = cmd.replace("runs/", f"{tmp_path}/").replace("~/roms", str(roms))
        cmd = cmd.replace(".venv/bin/python", shlex.quote(sys.executable))
        cmd = cmd.replace("python3 -m", f"{shlex.quote(sys.executable)} -m")
        cmd += " " + next((flags for script, flags in TINY.items() if script in cmd), "")
        proc = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "sonic-model" / "denoiser.safetensors").exists()
    assert "(224, 320, 3)" in proc.stdout  # the last command: gym.make + reset printed obs


@pytest.mark.parametrize("what", ["rom", "weights"])
def test_sonic_without_rom_or_weights_says_what_to_do(what: str):
    import gymnasium as gym

    import neuralgym

    if what == "rom":
        with pytest.raises(neuralgym.RomNotFoundError, match="stable_retro.import"):
            neuralgym.make_real("NeuralSonic-v0")
    else:
        with pytest.raises(Exception, match="train") as err:
            gym.make("NeuralSonic-v0")
        assert "stable_retro.import" in str(err.value)
