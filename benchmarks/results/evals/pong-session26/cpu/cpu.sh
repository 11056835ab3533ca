#!/usr/bin/env bash
# Session 26, on this project's 2-core CPU machine (from the repository root, with .venv):
# gpu.sh's fine-tuned g_phi (MODEL: the gphi run's exported folder, now checkpoints/pong)
# scored in closed loop (32 calls x 512 test windows) on recordings it never saw, the ones
# session 25 scored the g_phi before it on (evals/pong-session25/cpu/cpu.sh):
#   metadata_eval-ppo25.json: 300,000 steps of session 25's real-trained agent (seed 25; the
#     cache of its episodes alone, C25PPO);
#   metadata_eval-mix24.json: session 24's CPU recording (1M steps of scripted, random and
#     sticky-random play, seed 24; MIX24).
# Then the dream agent of gpu.sh (AGENT, ppo-dream.zip) played in the dream it trained in (the
# g_phi before: DREAM, checkpoints/pong at commit 0678856) and in the game, under the same
# actions: ../../dream_rewards/pong-cpu-session26-ppo-dream.* (16 envs x 256 steps, 18 min),
# and in the new g_phi's dream (pong-cpu-session26-ppo-dream-new-gphi.*).
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH
MODEL=${MODEL:-checkpoints/pong}
C25PPO=${C25PPO:?the cache of session 25 PPO episodes}; MIX24=${MIX24:?the session 24 cache}
AGENT=${AGENT:?ppo-dream.zip of gpu.sh}; DREAM=${DREAM:?checkpoints/pong at commit 0678856}
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
here=benchmarks/results/evals/pong-session26/cpu
score() {  # CACHE NAME: closed-loop scores of MODEL's g_phi on CACHE's test windows
  rm -rf /tmp/e26 && mkdir -p /tmp/e26 && cp "$MODEL"/config.json "$MODEL"/*.safetensors /tmp/e26/
  python training/train_metadata.py --cache "$1" --out /tmp/e26 --eval-only --device cpu $EVAL
  cp /tmp/e26/metadata_eval.json "$here/metadata_eval-$2.json"
}
score "$C25PPO" ppo25
score "$MIX24" mix24
out=benchmarks/results/dream_rewards/pong-cpu-session26-ppo-dream
OMP_NUM_THREADS=2 python benchmarks/dream_rewards.py --env NeuralPong-v0 --model "$DREAM" \
  --policy "$AGENT" --envs 16 --steps 256 --device cpu --seed 26 --json "$out.json" \
  --trace "$out.trace.npz"
# and in the dream of the new g_phi (MODEL), same agent, seed and settings (17 min)
out=benchmarks/results/dream_rewards/pong-cpu-session26-ppo-dream-new-gphi
OMP_NUM_THREADS=2 python benchmarks/dream_rewards.py --env NeuralPong-v0 --model "$MODEL" \
  --policy "$AGENT" --envs 16 --steps 256 --device cpu --seed 26 --json "$out.json" \
  --trace "$out.trace.npz"
