#!/usr/bin/env bash
# GPU session 21's device calls (one H100; from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand). Results here:
#   first/      call a: checkpoints/pong's denoiser fine-tuned with metadata maps, context noise
#               up to 1.0 (3,500 steps, 306 s); pong_frames --control at noise 0, 0.3, 0.6, 1.0
#   ./          call b, on the same host: that denoiser 3,000 more steps (300 s) with context
#               noise up to 5 (its train/ checkpoint removed so that the new setting applied);
#               pong_frames --control at noise 0, 1, 2.5, 5
#   drop/       call c, a new host (two failed starts before it): checkpoints/pong's denoiser
#               fine-tuned 2,000 steps (168 s) with metadata maps and context dropout 0.5;
#               pong_frames --control at noise -1 (no context) and 0; its denoiser committed
#               to checkpoints/pong (pong_frames-noise-1-cpu.json: the committed files, CPU)
# The folders of a and b were not kept: in neither does the metadata move the ball or paddle.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
export RECORD_STEPS=30000 RANDOM_STEPS=20000 SCRIPTED_STEPS=70000
export FRAMES_ARGS='--envs 16 --steps 64 --control 64 --denoising-steps 1'
case $1 in
  a) export DEN_STEPS=3500 DEN_SECONDS=440 FRAMES_NOISE='0 0.3 0.6 1.0'
     export DEN_ARGS='--metadata-maps --context-noise-max 1.0'
     bash training/gpu_session.sh start NeuralPong-v0 'SEED=21 setup record latents' \
       'SEED=21 LIMIT=500 denoiser' 'SEED=21 frames' 'SEED=21 export' ;;
  b) rm -rf /root/nw/NeuralPong-v0/model/train/denoiser
     export DEN_STEPS=3500 DEN_SECONDS=300 FRAMES_NOISE='0 1 2.5 5'
     export DEN_ARGS='--metadata-maps --context-noise-max 5'
     bash training/gpu_session.sh start NeuralPong-v0 'SEED=21 setup record latents' \
       'SEED=21 LIMIT=500 denoiser' 'SEED=21 frames' 'SEED=21 export' ;;
  c) export DEN_STEPS=2000 DEN_SECONDS=180 FRAMES_NOISE='-1 0'
     export DEN_ARGS='--metadata-maps --context-drop 0.5'
     bash training/gpu_session.sh start NeuralPong-v0 'SEED=21 setup record latents' \
       'SEED=21 LIMIT=500 denoiser' 'SEED=21 frames' 'SEED=21 export' ;;
esac
sleep 5; bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
