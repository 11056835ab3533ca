#!/usr/bin/env bash
# GPU session 18's three device calls, as run (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand). The host was lost after the
# second poll of lease 1 (the next call came too late), with both PPO runs under way; leases 2
# and 3 ran on a fresh host.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD
case ${1:?lease 1, 2 or 3} in
  1)  # g_phi: 500 steps open loop, then closed loop (rollout 32) until LIMIT; export; PPO
    WORK=/root/nw WORKERS=16 RECORD_STEPS=30000 RANDOM_STEPS=20000 SCRIPTED_STEPS=70000 SCRIPTED_EPISODE=6000 \
    META_STEPS=500 META_CLOSED_STEPS=150 \
    META_ARGS='--delta-classes 24 --event-weight 5 --reg-loss l1' \
    META_CLOSED_ARGS='--rollout 32 --dream-steps 2 --eval-rollout 32 --eval-rollout-windows 512 --eval-dream-steps 1' \
    META_EVAL_ARGS='--eval-rollout 32 --eval-rollout-windows 512 --eval-dream-steps 1' \
    REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=500 REWARDS_TRACE=1 \
    PPO_STEPS=1000000 PPO_ENVS=128 PPO_DREAM_ENVS=128 PPO_SECONDS=740 EVAL_EPISODES=30 \
    PPO_ARGS='--n-steps 16 --save-every 60 --resume' \
    PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
    bash training/gpu_session.sh start NeuralPong-v0 'SEED=18 setup record latents' '&SEED=18 metadata-eval' \
      'SEED=18 LIMIT=150 metadata' 'SEED=18 LIMIT=380 metadata-closed' 'SEED=18 export' \
      'SEED=18 CONTEXTS=1000 contexts' '&SEED=9 ppo-real' '&SEED=9 ppo-dream' wait \
      '&SEED=18 rewards' 'SEED=9 ppo-eval' wait 'SEED=18 CONTEXTS=24 contexts' 'SEED=18 export'
    sleep 5
    WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 500
    # then: WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
    ;;
  2)  # lease 1's exported g_phi (metadata.safetensors copied into checkpoints/pong for this
      # call only), evaluated on the same seed-18 recording
    WORK=/root/nw WORKERS=16 RECORD_STEPS=30000 RANDOM_STEPS=20000 SCRIPTED_STEPS=70000 SCRIPTED_EPISODE=6000 \
    META_EVAL_ARGS='--eval-rollout 32 --eval-rollout-windows 512 --eval-dream-steps 1' \
    bash training/gpu_session.sh start NeuralPong-v0 'SEED=18 setup record latents metadata-eval'
    sleep 5
    WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 330 --copy
    # then: cp /root/nw/NeuralPong-v0/results/metadata_eval-start.json $OUT/metadata_eval-closed100.json
    ;;
  3)  # dream rewards of both g_phi in the same model (old_meta.safetensors: checkpoints/pong's)
    W=/root/nw/NeuralPong-v0
    rm -rf /root/old && cp -r $W/model /root/old && cp old_meta.safetensors /root/old/metadata.safetensors
    for m in new old; do
      dir=$W/model; [ $m = old ] && dir=/root/old
      for p in scripted random; do
        timeout 70 python3 benchmarks/dream_rewards.py --env NeuralPong-v0 --model $dir --policy $p \
          --envs 32 --steps 500 --denoising-steps 1 --device cuda --seed 18 \
          --json $OUT/rewards-$m-$p.json --trace $OUT/rewards-$m-$p.trace.npz 2>&1 | tail -4
      done
    done
    ;;
esac
