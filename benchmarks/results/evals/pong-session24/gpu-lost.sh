#!/usr/bin/env bash
# GPU session 24's first device run (one H100; from the repository root, wheels carried in
# .whl, `bash training/device_tree.sh keep checkpoints/pong` beforehand), started once and
# polled (`poll`, each call within 30 s of the last). Its host was released while PPO ran
# (before the export), so only its log (gpu-lost.log) and PPO's dream curve so far
# (gpu-lost-dream.curve.csv) came back; the g_phi it trained was lost with the host.
#   part 1: 2,000,000 steps recorded without frames on 16 cores (seed 24: 1M scripted, 800k
#   random, 200k sticky-random); checkpoints/pong's g_phi (session 22's, window 8) scored on
#   their test windows, then fine-tuned at window 32 (the serve pause after a point is 16
#   steps, longer than 8) for 12,000 steps of 256 windows at a peak lr of 3e-4, scored again;
#   part 2, started by the poll that sees part 1 done: PPO for 1M steps (seed 9, 128 envs, as
#   sessions 16, 20 and 22) in the no-context dream of the new g_phi if its closed loop is
#   in sync at least as often as the old one's with no more false score changes, else of the
#   old one (the folder as committed); scored in the real game; dream_rewards.py (scripted
#   and random play, 32 envs x 256 steps, traces) in the new g_phi's dream; the model export.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
G=$WORK/NeuralPong-v0
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
export SCRIPTED_EPISODE=6000 NOFRAMES_SCRIPTED=1000000 NOFRAMES_RANDOM=800000 \
  NOFRAMES_STICKY=200000 META_NOFRAMES=1 META_STEPS=12000 META_EVAL_ARGS="$EVAL" \
  META_ARGS="--window 32 --lr 3e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL"
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=600 EVAL_EPISODES=30
export PPO_EVAL_POLICIES='dream random'
export PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume'
export REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1

newer_is_better() {  # closed loop: in sync at least as often, no more false score changes
  python3 - "$G/results/metadata_eval-start.json" "$G/model/metadata_eval.json" <<'PY'
import json, sys
old, new = (json.load(open(p))["closed_loop"]["modes"]["own metadata"] for p in sys.argv[1:])
false = [sum(v.get("false_changes") or 0 for v in m["variables"].values()) for m in (old, new)]
print(f"closed loop: in sync {old['in_sync']:.3f} -> {new['in_sync']:.3f}, "
      f"false score changes {false[0]:.0f} -> {false[1]:.0f}")
sys.exit(0 if new["in_sync"] >= old["in_sync"] and false[1] <= false[0] else 1)
PY
}

case ${1:-start} in
  start) bash training/gpu_session.sh start NeuralPong-v0 \
           'SEED=24 setup record-noframes metadata-eval' 'SEED=24 LIMIT=360 metadata'
         sleep 5 ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 500 --copy
if [ -e "$G/logs/DONE" ] && [ ! -e "$WORK/part2" ]; then
  touch "$WORK/part2"
  if newer_is_better; then dream=; echo "PPO in the new g_phi's dream"
  else dream="PPO_DREAM_MODEL=$G/start-eval"; echo "PPO in the committed g_phi's dream"; fi
  bash training/gpu_session.sh start NeuralPong-v0 "SEED=9 $dream ppo-dream" \
    'SEED=9 ppo-eval' 'SEED=24 rewards' 'SEED=24 export'
fi
