#!/usr/bin/env bash
# GPU session 19's device calls (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand): checkpoints/pong's g_phi
# made to read no latent frames (train_metadata.py --no-latent-input), fine-tuned open loop
# on new data, evaluated, and its dream's rewards measured (the lease's device time, after
# failed starts, left no room for PPO).
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD
case ${1:?lease 1} in
  1)
    WORK=/root/nw WORKERS=16 RECORD_STEPS=30000 RANDOM_STEPS=20000 SCRIPTED_STEPS=70000 SCRIPTED_EPISODE=6000 \
    META_STEPS=${META_STEPS:-2000} \
    META_ARGS='--delta-classes 24 --event-weight 5 --reg-loss l1 --no-latent-input --eval-rollout 32 --eval-rollout-windows 512 --eval-dream-steps 1' \
    META_EVAL_ARGS='--eval-rollout 32 --eval-rollout-windows 512 --eval-dream-steps 1' \
    REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=500 REWARDS_TRACE=1 \
    PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=${PPO_SECONDS:-680} EVAL_EPISODES=30 \
    PPO_EVAL_POLICIES='dream random' \
    PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
    bash training/gpu_session.sh start NeuralPong-v0 'SEED=19 setup record latents' '&SEED=19 metadata-eval' \
      "SEED=19 LIMIT=${META_LIMIT:-240} metadata" \
      'SEED=19 CONTEXTS=1000 contexts' 'SEED=19 rewards' 'SEED=19 CONTEXTS=24 contexts' 'SEED=19 export'
    sleep 5
    WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 480 --copy
    # then, each within 30 s of the last: WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
    ;;
esac
