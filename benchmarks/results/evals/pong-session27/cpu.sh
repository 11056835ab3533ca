#!/usr/bin/env bash
# Session 27, on this project's 2-core CPU machine (from the repository root, with .venv):
# does g_phi learn the ball's angle off a paddle better with the positions' differences and
# velocities as looked-up inputs (train_metadata.py --relative-classes)? checkpoints/pong's
# g_phi fine-tuned 1,500 steps (256 windows of 32, peak lr 3e-4, seed 27) on session 24's CPU
# recording (MIX24: 1M steps of scripted, random and sticky-random play), with the inputs
# (rel24) and without (ctl, the control), then each scored one step ahead (onestep.py) on
# session 25's recording of its real-trained agent (C25PPO, held out from all three):
# onestep-ppo25*.txt, and in closed loop there: metadata_eval-ppo25-*.json (session 26's
# committed g_phi: ../pong-session26/cpu/metadata_eval-ppo25.json). About 15 min per fine-tune.
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH PYTHONPATH=$PWD
MIX24=${MIX24:?the session 24 cache}; C25PPO=${C25PPO:?the cache of session 25 PPO episodes}
here=benchmarks/results/evals/pong-session27
# checkpoints/pong's g_phi fine-tuned on CACHE into /tmp/s27/RUN, with the looked-up inputs
# (rel24*) or without (ctl*), then scored on C25PPO (with TEST_ONLY 1 its test episodes only):
# one step ahead (onestep-ppo25[test]-RUN.txt) and in closed loop, 32 calls x 512 test windows
# as session 26 (metadata_eval-ppo25-RUN.json)
finetune() {  # RUN CACHE TEST_ONLY
  local run=$1 cache=$2 test_only=$3 out=/tmp/s27/$1 extra=() tag=ppo25
  [[ $run == ctl* ]] || extra=(--relative-classes 24)
  [ "$test_only" = 0 ] || tag=ppo25test
  rm -rf "$out" && mkdir -p "$out" && cp checkpoints/pong/config.json checkpoints/pong/*.safetensors "$out/"
  OMP_NUM_THREADS=2 python training/train_metadata.py --cache "$cache" --out "$out" \
    --steps 1500 --checkpoint-every 500 --device cpu --window 32 --lr 3e-4 --warmup 100 \
    --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 \
    --reg-loss l1 --batch-size 256 --seed 27 "${extra[@]}"
  python "$here/onestep.py" "$out" "$C25PPO" 1000000 "$test_only" > "$here/onestep-$tag-$run.txt"
  rm -rf /tmp/e27 && mkdir -p /tmp/e27 && cp "$out"/config.json "$out"/*.safetensors /tmp/e27/
  python training/train_metadata.py --cache "$C25PPO" --out /tmp/e27 --eval-only --device cpu \
    --eval-rollout 32 --eval-rollout-windows 512
  cp /tmp/e27/metadata_eval.json "$here/metadata_eval-ppo25-$run.json"
}
python "$here/onestep.py" checkpoints/pong "$C25PPO" 1000000 > "$here/onestep-ppo25.txt"
for run in rel24 ctl; do
  finetune "$run" "$MIX24" 0
  cp "/tmp/s27/$run/metadata_eval.json" "$here/metadata_eval-mix24-$run.json"
done
# Then the same two fine-tunes with the agent's play in the data: C25 (session 25's CPU cache,
# MIX24 and the 129 episodes of C25PPO, whose split they keep: the test episodes of C25PPO are
# none of C25's train episodes); scored on C25PPO's test episodes (-agent runs).
C25=${C25:?session 25's cache of MIX24 and the agent's play}
for run in rel24 ctl; do finetune "$run-agent" "$C25" 1; done
python "$here/onestep.py" checkpoints/pong "$C25PPO" 1000000 1 > "$here/onestep-ppo25test.txt"
