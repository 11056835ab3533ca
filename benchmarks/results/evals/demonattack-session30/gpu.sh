#!/usr/bin/env bash
# GPU session 30's device script (copy it to the repository root as gpu.sh; each call within
# 30 s of the last). Two games at once on one host, each in its own $WORK/ENV_ID:
#   da (tree: `device_tree.sh keep checkpoints/demonattack`, wheels carried in .whl):
#     DemonAttack from checkpoints/demonattack (copied out of the tree first, as START, so that
#     later calls may send a tree without it): 150k sticky-random + 30k uniform-random steps
#     of new data (seed 2), latents with the committed VAE, g_phi fine-tuned with step-change
#     classes and an L1 loss (its first run learnt nothing beyond copying), the denoiser
#     fine-tuned for 660 s, start contexts, the paired benchmark on the held-out episodes with
#     per-start values, the export. About 1,300 s.
#   pong (tree: `keep checkpoints/pong`; the wheels are already installed): PPO in the dream of
#     checkpoints/pong with 512-step dream episodes (training/pong_dream.env's settings
#     otherwise: the 128-step runs are ppo/pong-h100-session26, -28 and -29), 720 s, scored in
#     30 real games, its dream points against the game's.
#   poll [SECONDS]: both runs' logs and results so far into $OUT.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
case ${1:-poll} in
  da)
    rm -rf /root/da-start && cp -r checkpoints/demonattack /root/da-start
    SEED=2 RECORD_STEPS=150000 RANDOM_STEPS=30000 START=/root/da-start META_STEPS=3000 \
      META_ARGS='--delta-classes 24 --reg-loss l1' DEN_STEPS=6000 DEN_SECONDS=660 CONTEXTS=24 \
      BENCH_EPISODES=300 BENCH_STARTS=16 BENCH_ARGS='--per-start' \
      NOTE='GPU session 30: checkpoints/demonattack fine-tuned on 180k new steps (seed 2)' \
      bash training/gpu_session.sh start NeuralDemonAttack-v0 'setup record' 'LIMIT=240 latents' \
      '&LIMIT=240 metadata' 'LIMIT=720 denoiser' wait contexts 'bench export'
    sleep 20; ls /tmp/site | head -3 ;;
  pong)
    source training/pong_dream.env
    export PPO_SECONDS=720 PPO_EVAL_POLICIES=dream512 REWARDS_POLICIES="$G/ppo/dream512.zip"
    bash training/gpu_session.sh start NeuralPong-v0 \
      'SEED=9 PPO_DREAM_NAME=dream512 PPO_DREAM_EPISODE=512 ppo-dream' 'SEED=9 ppo-eval' \
      'SEED=29 rewards'
    sleep 5 ;;
esac
if [ -d "$WORK/NeuralPong-v0/logs" ]; then
  bash training/gpu_session.sh poll NeuralPong-v0 0 --copy && mv "$OUT/logs.tgz" "$OUT/pong-logs.tgz"
fi
bash training/gpu_session.sh poll NeuralDemonAttack-v0 "${2:-0}" --copy
