#!/usr/bin/env bash
# Written for GPU session 32, which got no device machine (every start failed, costing 1,096 s
# of its device time, then new loans were paused): the plan for the next lease, beside
# evals/demonattack-session31/next.sh's Breakout run (bk; its pongreal mode is this one's with
# a third seed). Copy it to the repository root as gpu.sh; each call within 30 s of the last;
# one H100 or H200, 16 cores:
#   da (tree: `bash training/device_tree.sh keep checkpoints/demonattack`, wheels carried in
#     .whl): DemonAttack from checkpoints/demonattack (session 30's, given the new metadata
#     variable hit_timer by training/add_metadata.py: zero weights, so it dreams as before),
#     copied out of the tree first (START): 160k sticky-random + 40k uniform-random steps of
#     new data (seed 5), recorded with hit_timer; g_phi fine-tuned 3,000 steps (it learns to
#     predict the timer); the denoiser fine-tuned 420 s with the flash windows drawn 5 times
#     as often and importance weights that undo the draw (--change-reweight), so it learns
#     what a timer value draws; start contexts; the paired benchmark on the test split; the
#     export; then the heldout stage on the seed-3 recording (the 1,013 starts of
#     demonattack-cpu-session31-seed3-steps1) with the starting model beside it.
#   pongreal (no tree of its own; start it once da's latents stage is done, so that its 128
#     workers do not meet the recording and the encoding): PPO on the real game from scratch,
#     1M steps (at most 420 s each), pong_dream.env's PPO settings (128 envs, n-steps 16),
#     seeds 10 and 11 (SEEDS) one after another, each its own agent in ppo/ (PPO_REAL_NAME=real<seed>)
#     and scored in 100 real games (results/ppo-real<seed>.json).
# The da mode's sizes can be cut to the device time left: DA_RECORD, DA_RANDOM (steps), DA_META
# (g_phi steps), DA_DEN_STEPS, DA_DEN_SECONDS, DA_HELDOUT= (no heldout stage).
#   poll [SECONDS]: both runs' logs (<game>-logs.tgz) and results so far into $OUT.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
case ${1:-poll} in
  da)
    rm -rf /root/da-start && cp -r checkpoints/demonattack /root/da-start
    new=$(( (${DA_RECORD:-160000} + ${DA_RANDOM:-40000}) / 1000 ))k
    SEED=5 RECORD_STEPS=${DA_RECORD:-160000} RANDOM_STEPS=${DA_RANDOM:-40000} START=/root/da-start \
      META_STEPS=${DA_META:-3000} DEN_STEPS=${DA_DEN_STEPS:-3500} DEN_SECONDS=${DA_DEN_SECONDS:-420} \
      DEN_ARGS='--change-boost 5 --change-top 0.01 --change-reweight' \
      CONTEXTS=24 BENCH_EPISODES=300 BENCH_STARTS=16 BENCH_ARGS='--per-start' \
      HELDOUT_STEPS=100000 HELDOUT_SEED=3 HELDOUT_STARTS=8 BENCH_ALSO=/root/da-start \
      NOTE="GPU session 32: hit_timer added (add_metadata.py), fine-tuned on $new new steps (seed 5), flash windows drawn 5x as often with importance weights" \
      bash training/gpu_session.sh start NeuralDemonAttack-v0 'setup record' 'LIMIT=300 latents' \
      '&LIMIT=420 metadata' 'LIMIT=500 denoiser' wait contexts 'BENCH_ALSO= bench' export \
      ${DA_HELDOUT-heldout}
    sleep 20; ls /tmp/site | head -3 ;;
  pongreal)
    export PPO_ENVS=128 PPO_STEPS=1000000 PPO_SECONDS=420 PPO_ARGS='--n-steps 16 --save-every 60' \
      EVAL_EPISODES=100
    groups=()
    for s in ${SEEDS:-10 11}; do
      groups+=("SEED=$s PPO_REAL_NAME=real$s PPO_EVAL_POLICIES=real$s ppo-real ppo-eval")
    done
    bash training/gpu_session.sh start NeuralPong-v0 "${groups[@]}"
    sleep 5 ;;
esac
bash training/gpu_session.sh poll-all "${2:-0}" NeuralDemonAttack-v0 NeuralPong-v0
