#!/usr/bin/env bash
# Session 25, on this project's 2-core CPU machine (from the repository root, with .venv): is
# checkpoints/pong's g_phi right where a policy that returns the ball plays, and does a
# fine-tune on such play fix it? Not kept (more false player points on that play).
#   1. 300,000 steps of the real-trained PPO agent of ../gpu.sh (seed 25, 129 episodes), no
#      frames, added to session 24's CPU recording (evals/pong-session24/cpu/cpu.sh: 1M steps of
#      scripted, random and sticky-random play); caches of the whole (1.3M steps) and of the
#      PPO episodes alone (their 8 test episodes; split by episode, as every cache).
#   2. checkpoints/pong's g_phi scored in closed loop (32 calls x 512 test windows) on the PPO
#      play (metadata_eval-ppo-start.json) and on session 24's recording (-mix-start).
#   3. It fine-tuned 2,000 steps of 256 windows at a peak lr of 1e-4 on the 1.3M steps (25 min,
#      beside other jobs), scored the same way (metadata_eval-ppo.json, -mix.json).
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH
REC=${REC:-/tmp/cpu24b/NeuralPong-v0/data-noframes}  # session 24's recording
PPO_ZIP=${PPO_ZIP:?the agent of ../gpu.sh (ppo-real.zip)}
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
python agents/record.py --env NeuralPong-v0 --agent ppo --ppo-model "$PPO_ZIP" --steps 300000 \
  --seed 25 --workers 2 --max-episode-steps 6000 --state-every 1000 --no-frames --out "$REC"
mkdir -p /tmp/ppoonly/episodes && for e in "$REC"/episodes/ppo-*; do
  ln -sfn "$e" /tmp/ppoonly/episodes/; done
python3 - "$REC/index.json" /tmp/ppoonly/index.json <<'PY'
import json, sys
index = json.load(open(sys.argv[1]))
index["episodes"] = {k: v for k, v in index["episodes"].items() if k.startswith("ppo-")}
json.dump(index, open(sys.argv[2], "w"), indent=1)
PY
python training/prepare_latents.py --data "$REC" --out /tmp/c25
python training/prepare_latents.py --data /tmp/ppoonly --out /tmp/c25ppo
score() {  # FOLDER CACHE NAME: closed-loop scores of FOLDER's g_phi on CACHE's test windows
  rm -rf /tmp/e25 && mkdir -p /tmp/e25 && cp "$1"/config.json "$1"/*.safetensors /tmp/e25/
  python training/train_metadata.py --cache "$2" --out /tmp/e25 --eval-only --device cpu $EVAL
  cp /tmp/e25/metadata_eval.json "metadata_eval-$3.json"
}
score checkpoints/pong /tmp/c25ppo ppo-start
score checkpoints/pong "${REC%/data-noframes}/metadata-noframes" mix-start
rm -rf /tmp/m25 && mkdir -p /tmp/m25 && cp checkpoints/pong/config.json checkpoints/pong/*.safetensors /tmp/m25/
python training/train_metadata.py --cache /tmp/c25 --out /tmp/m25 --steps 2000 --lr 1e-4 \
  --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 \
  --reg-loss l1 --batch-size 256 --device cpu --seed 25 $EVAL
score /tmp/m25 /tmp/c25ppo ppo
score /tmp/m25 "${REC%/data-noframes}/metadata-noframes" mix
