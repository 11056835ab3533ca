#!/usr/bin/env bash
# The GPU pipeline, one stage per command, run on the GPU host from the repository root:
#
#   bash training/gpu_pipeline.sh ENV_ID STAGE [STAGE ...]
#
# Stages: setup (install the carried wheels), record (sticky-random, plus RANDOM_STEPS of
# uniform random play and SCRIPTED_STEPS of the game's scripted player), record-noframes
# (NOFRAMES_SCRIPTED, NOFRAMES_RANDOM and NOFRAMES_STICKY steps of those players, and
# NOFRAMES_PPO of the agent ppo-real trained, or of NOFRAMES_PPO_MODEL's, without frames, into
# their own dataset, and its cache of metadata only: a g_phi that reads no frames learns the
# game's rules from millions of steps; META_NOFRAMES=1 trains and evaluates g_phi on it), vae,
# latents, metadata, metadata-eval (the starting folder's g_phi on this run's test windows, to
# $RESULTS/metadata_eval-start.json), metadata-closed (META_CLOSED_STEPS more of g_phi in closed loop, resuming the
# metadata stage's run), denoiser, decoder (a fast decoder for the VAE's
# latents, training/train_decoder.py; retrain it whenever the vae stage ran), contexts (start contexts for the
# dream env), bench (paired rollouts against copy-last), heldout (paired rollouts on all the
# episodes of a separate recording, HELDOUT_STEPS of sticky-random play with HELDOUT_SEED, that
# no stage trains on: more starts than the test split, the same ones in every run), rewards
# (benchmarks/dream_rewards.py: the dream's points against the game's for each of
# REWARDS_POLICIES), ablations
# (training/ablations.sh $ABL_GROUPS), throughput (benchmarks/throughput.py), frames (Pong:
# benchmarks/pong_frames.py --control at each of FRAMES_NOISE context-noise levels: does the
# dream draw the ball and paddle where its metadata puts them), sampler (SAMPLER_NOISE as the
# model folder's context-noise level, which its dream env then uses),
# export; and for agents: ppo-real (PPO on the real game, into $PPO/$PPO_REAL_NAME.zip: one
# name per seed lets several real-game agents share a work folder), record-ppo (PPO_RECORD_STEPS played
# by that agent, into the same dataset), ppo-dream (PPO inside the dream of the model, or of
# PPO_DREAM_MODEL, e.g. the shipped one while a new one trains; as many steps as ppo-real;
# into $PPO/$PPO_DREAM_NAME.zip, dream episodes cut at PPO_DREAM_EPISODE steps if set),
# ppo-eval (both agents and the random policy scored in the real game, learning curves
# plotted; PPO_EVAL_POLICIES names fewer), partial (an archive of the results and PPO
# learning curves so far, which gpu_session.sh poll --copy brings back), ppo-probe
# (PPO_STEPS=auto: the steps PPO makes in the dream in PPO_PROBE_BUDGET seconds, from
# PPO_PROBE_SECONDS of dream PPO, so that both agents get those equal steps). Data,
# checkpoints and results stay in $WORK/ENV_ID on the host's disk between calls; every training stage resumes from its
# checkpoint there, and the first one of a fresh host starts from the weights last committed
# (checkpoints/<game>/, else the shipped neuralgym/shipped/<game>/; START=DIR names another
# folder, START=none starts from scratch), so quality accumulates across sessions. `export`
# writes two archives to $OUT: <game>-model.tgz (the world-model folder as
# training/export_model.py makes it: float16 safetensors, start contexts, evals) and
# <game>-results.tgz (benchmark JSONs, videos), each split into .partN pieces of 15 MiB when
# larger. Several games can run at once on one host, each in its own $WORK/ENV_ID (one early
# two-game run left its host unresponsive, cause unknown; a later lease trained Airstriker
# beside Breakout's PPO without trouble).
# Step counts, seconds and extra flags per stage are environment variables (below); a stage
# that runs past $LIMIT seconds stops at its last checkpoint, which the next call resumes.
set -euo pipefail
ENV_ID=${1:?usage: gpu_pipeline.sh ENV_ID STAGE...}; shift
WORK=${WORK:-/root/neuralgym-work}/$ENV_ID
OUT=${OUT:-$WORK/out}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
DATA=$WORK/data; MODEL=$WORK/model; CACHE=$WORK/latents; RESULTS=$WORK/results; PPO=$WORK/ppo
NF_DATA=$WORK/data-noframes; NF_CACHE=$WORK/metadata-noframes  # record-noframes' dataset, cache
mkdir -p "$WORK" "$OUT" "$RESULTS"
DEVICE=${DEVICE:-cuda}
RECORD_STEPS=${RECORD_STEPS:-100000}; SEED=${SEED:-0}; WORKERS=${WORKERS:-$(nproc)}
RANDOM_STEPS=${RANDOM_STEPS:-0}  # uniform random play recorded beside the sticky-random
SCRIPTED_STEPS=${SCRIPTED_STEPS:-0}  # and the scripted player's (Pong: rallies, points won)
SCRIPTED_EPISODE=${SCRIPTED_EPISODE:-2000}  # its episodes' step cap (Pong: a game is ~8,000)
PPO_STEPS=${PPO_STEPS:-500000}; PPO_ENVS=${PPO_ENVS:-16}; PPO_DREAM_ENVS=${PPO_DREAM_ENVS:-128}
PPO_SECONDS=${PPO_SECONDS:-0}  # each PPO run stops (model written) after this; 0: PPO_STEPS
PPO_ARGS=${PPO_ARGS:-}; PPO_DREAM_ARGS=${PPO_DREAM_ARGS:-}  # extra train_ppo.py flags
PPO_DREAM_MODEL=${PPO_DREAM_MODEL:-}  # the dream ppo-dream trains in (default: $WORK's model)
PPO_DREAM_NAME=${PPO_DREAM_NAME:-dream}  # ppo-dream's agent: $PPO/<name>.zip (ppo-eval's name)
PPO_REAL_NAME=${PPO_REAL_NAME:-real}  # ppo-real's: $PPO/<name>.zip, .curve.csv, .log
PPO_DREAM_EPISODE=${PPO_DREAM_EPISODE:-}  # its dream episodes' step cap (--max-episode-steps)
PPO_RECORD_STEPS=${PPO_RECORD_STEPS:-50000}; EVAL_EPISODES=${EVAL_EPISODES:-30}
# ppo-probe: PPO_PROBE_SECONDS of dream PPO (episodes cut at PPO_PROBE_EPISODE steps, so that
# they end and the curve has rows) measure its steps/s; capped at PPO_PROBE_CAP (what PPO on
# the real game makes), x PPO_PROBE_BUDGET seconds, it is the PPO_STEPS=auto of both runs
PPO_PROBE_SECONDS=${PPO_PROBE_SECONDS:-60}; PPO_PROBE_BUDGET=${PPO_PROBE_BUDGET:-800}
PPO_PROBE_CAP=${PPO_PROBE_CAP:-1700}; PPO_PROBE_EPISODE=${PPO_PROBE_EPISODE:-200}
EVAL_ARGS=${EVAL_ARGS:-}  # extra evaluate_policy.py flags
# ppo-eval's policies: the PPO runs' models (real, dream: $PPO/<name>.zip) and random play
PPO_EVAL_POLICIES=${PPO_EVAL_POLICIES:-real dream random}
VAE_STEPS=${VAE_STEPS:-1000}; META_STEPS=${META_STEPS:-3000}; DEN_STEPS=${DEN_STEPS:-3000}
DEN_SECONDS=${DEN_SECONDS:-0}  # the denoiser stops cleanly (saved, evaluated) after this
VAE_ARGS=${VAE_ARGS:-}; META_ARGS=${META_ARGS:-}  # extra train_vae.py / train_metadata.py flags
NOFRAMES_SCRIPTED=${NOFRAMES_SCRIPTED:-0}; NOFRAMES_RANDOM=${NOFRAMES_RANDOM:-0}
NOFRAMES_STICKY=${NOFRAMES_STICKY:-0}  # record-noframes' steps per player
NOFRAMES_PPO=${NOFRAMES_PPO:-0}  # and of ppo-real's agent (run ppo-real first)
NOFRAMES_PPO_MODEL=${NOFRAMES_PPO_MODEL:-$PPO/$PPO_REAL_NAME.zip}  # or another's (ppo/dream.zip)
META_NOFRAMES=${META_NOFRAMES:-}  # 1: the metadata stages read record-noframes' cache
META_CACHE=$CACHE; [ -z "$META_NOFRAMES" ] || META_CACHE=$NF_CACHE
META_CLOSED_STEPS=${META_CLOSED_STEPS:-500}; META_CLOSED_ARGS=${META_CLOSED_ARGS:---rollout 16 --dream-steps 2}
META_EVAL_ARGS=${META_EVAL_ARGS:-}  # extra flags of the metadata-eval stage (--eval-rollout 32)
REWARDS_POLICIES=${REWARDS_POLICIES:-}  # policies or PPO .zip paths (default: random, and
# the game's scripted player where it has one: neuralgym.policies.SCRIPTED)
REWARDS_ENVS=${REWARDS_ENVS:-32}; REWARDS_STEPS=${REWARDS_STEPS:-500}
REWARDS_MODEL=${REWARDS_MODEL:-}; REWARDS_TAG=${REWARDS_TAG:-}  # another folder; its JSONs' tag
REWARDS_ARGS=${REWARDS_ARGS:-}  # extra dream_rewards.py flags (--sample-metadata)
REWARDS_TRACE=${REWARDS_TRACE:-}  # 1: also keep each policy's trace (rewards-<policy>.trace.npz)
DEN_ARGS=${DEN_ARGS:-}  # extra train_denoiser.py flags (model size, T, ablations)
DEC_STEPS=${DEC_STEPS:-2000}; DEC_ARGS=${DEC_ARGS:-}  # train_decoder.py steps and flags
CONTEXTS=${CONTEXTS:-24}  # start contexts shipped with the model
FRAMES_NOISE=${FRAMES_NOISE:-0}; FRAMES_ARGS=${FRAMES_ARGS:---envs 16 --steps 64 --control 64}
SAMPLER_NOISE=${SAMPLER_NOISE:-0}  # the sampler stage's context-noise level
BENCH_EPISODES=${BENCH_EPISODES:-60}; BENCH_STARTS=${BENCH_STARTS:-8}
BENCH_HORIZONS=${BENCH_HORIZONS:-1 2 4 8 16 32 64}
BENCH_ALSO=${BENCH_ALSO:-}  # more bench predictors beside the model and copy-last (folders)
BENCH_ARGS=${BENCH_ARGS:-}  # extra paired_rollout.py flags (--per-start, --denoising-steps N)
HELDOUT_STEPS=${HELDOUT_STEPS:-100000}; HELDOUT_SEED=${HELDOUT_SEED:-3}  # the heldout stage's
HELDOUT_STARTS=${HELDOUT_STARTS:-8}  # recording, and its starts per episode
ABL_GROUPS=${ABL_GROUPS:-all}  # the ablations stage's groups (its ABL_* settings pass through)
TP_ARGS=${TP_ARGS:-}; TP_NAME=${TP_NAME:-throughput}  # throughput.py flags; its JSON's name
NOTE=${NOTE:-}  # a line on this run, kept in the exported config.json under "training"
LIMIT=${LIMIT:-400}  # seconds: a safety net per training stage
game=${ENV_ID#Neural}; game=${game%-v0}; game=${game,,}
start=${START:-checkpoints/$game}  # START=none: train from scratch
[ -e "$start/config.json" ] || [ "$start" = none ] || start=neuralgym/shipped/$game

log() { echo "[$(date +%T) $game] $*"; }
# archive a folder into $OUT/NAME, in 15 MiB pieces NAME.partN when larger ($OUT's file limit)
archive() {
  local name=$1; shift
  tar czf "$OUT/$name" "$@"
  if [ "$(stat -c %s "$OUT/$name")" -gt $((15 * 2**20)) ]; then
    split -b 15M -d -a 1 "$OUT/$name" "$OUT/$name.part" && rm "$OUT/$name"
  fi
}
# record STEPS steps played by AGENT into the dataset (extra record.py flags after them)
record() {
  local agent=$1 steps=$2; shift 2
  python3 agents/record.py --env "$ENV_ID" --agent "$agent" --steps "$steps" --seed "$SEED" \
    --workers "$WORKERS" --max-episode-steps 2000 --state-every 50 --out "$DATA" "$@" \
    2>&1 | tr "\r" "\n" | grep -v "step/s\|Powered by Stella\|A.L.E: Arcade" | tail -40
}
# paired rollouts of the model, copy-last and $BENCH_ALSO: DATA SPLIT EPISODES STARTS JSON [flags]
paired() {
  local data=$1 split=$2 episodes=$3 starts=$4 json=$5; shift 5
  # shellcheck disable=SC2086  # word splitting of the predictors, horizons and flags is wanted
  python3 benchmarks/paired_rollout.py --env "$ENV_ID" --data "$data" --split "$split" \
    --predictor "$MODEL" copy-last $BENCH_ALSO --episodes "$episodes" \
    --starts-per-episode "$starts" --batch-size 64 --horizons $BENCH_HORIZONS \
    --device "$DEVICE" --json "$json" "$@" $BENCH_ARGS 2>&1 | grep -v "start/s"
}
# the first stage that reads the model folder copies the committed model into it (fine-tuning);
# under a lock, as two background groups ('&... ppo-dream') may both be first: one copies (into
# a temporary folder, renamed into place), the other waits and finds the copy
init_model() {
  (
    flock 9
    if [ ! -e "$MODEL/config.json" ] && [ -e "$start/config.json" ]; then
      rm -rf "$MODEL.partial" && mkdir -p "$MODEL.partial"
      cp "$start"/config.json "$start"/*.safetensors "$MODEL.partial"/
      if [ -d "$MODEL" ]; then  # config.json last: it marks the copy done
        mv "$MODEL.partial"/*.safetensors "$MODEL"/ && mv "$MODEL.partial"/config.json "$MODEL"/
        rmdir "$MODEL.partial"
      else mv "$MODEL.partial" "$MODEL"; fi
      log "starting from the committed model $start"
    fi
  ) 9> "$WORK/.model.lock"
}
# PPO_STEPS, or with PPO_STEPS=auto the count the ppo-probe stage wrote
ppo_steps() {
  if [ "$PPO_STEPS" != auto ]; then echo "$PPO_STEPS"; return; fi
  [ -s "$PPO/steps" ] || { echo "PPO_STEPS=auto: run the ppo-probe stage first" >&2; return 1; }
  cat "$PPO/steps"
}
# PPO in the dream (of PPO_DREAM_MODEL, else $WORK's model): STEPS SECONDS OUT [flags...]
dream_ppo() {
  local steps=$1 seconds=$2 out=$3; shift 3
  # shellcheck disable=SC2086  # word splitting of the flags is wanted
  python3 agents/train_ppo.py --env "$ENV_ID" --dream "${PPO_DREAM_MODEL:-$MODEL}" \
    --steps "$steps" --n-envs "$PPO_DREAM_ENVS" --seed "$SEED" --device "$DEVICE" \
    --max-seconds "$seconds" --out "$out" $PPO_DREAM_ARGS "$@"
}
# run a training command for at most N seconds; a timeout is not a failure (it resumes)
budget() { local s=$1; shift; timeout --signal=TERM "$s" "$@" || [ $? -eq 124 ]; }

for stage in "$@"; do
  log "stage $stage"
  case $stage in setup|record|record-noframes|ppo-real|record-ppo|ppo-eval|partial) ;;
    *) init_model ;; esac
  case $stage in
    setup)
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
      ;;
    record)
      record sticky-random "$RECORD_STEPS"
      [ "$RANDOM_STEPS" -eq 0 ] || record random "$RANDOM_STEPS"
      [ "$SCRIPTED_STEPS" -eq 0 ] || record scripted "$SCRIPTED_STEPS" \
        --max-episode-steps "$SCRIPTED_EPISODE"
      ;;
    record-noframes)
      for agent in scripted random sticky-random ppo; do
        extra=()
        case $agent in scripted) n=$NOFRAMES_SCRIPTED ;; random) n=$NOFRAMES_RANDOM ;;
                       sticky-random) n=$NOFRAMES_STICKY ;;
                       *) n=$NOFRAMES_PPO; extra=(--ppo-model "$NOFRAMES_PPO_MODEL") ;; esac
        [ "$n" -eq 0 ] || record "$agent" "$n" --no-frames --state-every 1000 \
          --max-episode-steps "$SCRIPTED_EPISODE" --out "$NF_DATA" "${extra[@]}"
      done
      rm -rf "$NF_CACHE"
      python3 training/prepare_latents.py --data "$NF_DATA" --out "$NF_CACHE" 2>&1 \
        | tr '\r' '\n' | tail -1
      ;;
    ppo-real)
      steps=$(ppo_steps)
      mkdir -p "$PPO"  # the whole output in ppo/<name>.log (partial brings it back): a
      # worker's death shows there, where the last lines hold only the pipe it broke
      python3 agents/train_ppo.py --env "$ENV_ID" --steps "$steps" --n-envs "$PPO_ENVS" \
        --seed "$SEED" --device "$DEVICE" --max-seconds "$PPO_SECONDS" \
        --out "$PPO/$PPO_REAL_NAME.zip" $PPO_ARGS 2>&1 | tee "$PPO/$PPO_REAL_NAME.log" | tail -8
      ;;
    record-ppo)
      record ppo "$PPO_RECORD_STEPS" --ppo-model "$PPO/$PPO_REAL_NAME.zip"
      ;;
    ppo-probe)
      mkdir -p "$PPO"
      dream_ppo 1000000000 "$PPO_PROBE_SECONDS" "$PPO/probe.zip" \
        --max-episode-steps "$PPO_PROBE_EPISODE" 2>&1 | tail -3
      python3 - "$PPO/probe.curve.csv" "$PPO_PROBE_CAP" "$PPO_PROBE_BUDGET" > "$PPO/steps" <<'PY'
import sys
rows = [r.split(",") for r in open(sys.argv[1]).read().split()[1:]]  # step,return,n,seconds
if len(rows) < 2:
    sys.exit("ppo-probe: fewer than 2 rollouts ended an episode; raise PPO_PROBE_SECONDS")
(s0, t0), (s1, t1) = [(float(r[0]), float(r[3])) for r in (rows[0], rows[-1])]
rate = (s1 - s0) / max(t1 - t0, 1e-9)  # after the first rollout: warm-up and graph capture
print(f"ppo-probe: {rate:.0f} dream PPO steps/s over {len(rows)} rollouts", file=sys.stderr)
print(max(1, int(min(rate, float(sys.argv[2])) * float(sys.argv[3]))))
PY
      rm -f "$PPO/probe.zip"  # only its curve is kept (probe.curve.csv)
      log "PPO_STEPS=auto is $(cat "$PPO/steps") for both PPO runs"
      ;;
    ppo-dream)
      steps=$(ppo_steps)
      dream_ppo "$steps" "$PPO_SECONDS" "$PPO/$PPO_DREAM_NAME.zip" \
        ${PPO_DREAM_EPISODE:+--max-episode-steps "$PPO_DREAM_EPISODE"} 2>&1 | tail -8
      ;;
    ppo-eval)  # in the real game: the real-trained agent, the dream-trained one, random
      curves=(); labels=(); refs=()  # the scored PPO runs' learning curves, plotted below
      for policy in $PPO_EVAL_POLICIES; do
        path=$PPO/$policy.zip; [ "$policy" = random ] && path=random
        python3 agents/evaluate_policy.py --env "$ENV_ID" --policy "$path" \
          --episodes "$EVAL_EPISODES" --workers "$WORKERS" --json "$RESULTS/ppo-$policy.json" \
          $EVAL_ARGS 2>&1 | tail -2
        refs+=("$RESULTS/ppo-$policy.json")
        if [ "$policy" != random ]; then
          cp "$PPO/$policy.curve.csv" "$RESULTS"/
          case $policy in real) label="real game" ;; real*) label="real game, $policy" ;;
            *) label=$policy ;; esac
          curves+=("$PPO/$policy.curve.csv"); labels+=("PPO, $label")
        fi
      done
      if [ ${#curves[@]} -gt 0 ]; then
        python3 agents/evaluate_policy.py --curves "${curves[@]}" --labels "${labels[@]}" \
          --reference "${refs[@]}" --plot "$RESULTS/ppo-curves.png" 2>&1 | tail -2
      fi
      ;;
    vae)
      lr=1e-3; if [ -e "$start/config.json" ]; then lr=3e-4; fi  # fine-tuning: a gentler peak
      budget "$LIMIT" python3 training/train_vae.py --data "$DATA" --out "$MODEL" \
        --steps "$VAE_STEPS" --checkpoint-every 250 --batch-size 64 --lr "$lr" \
        --device "$DEVICE" $VAE_ARGS \
        2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -5
      ;;
    latents)
      rm -rf "$CACHE"
      python3 training/prepare_latents.py --data "$DATA" --model "$MODEL" --out "$CACHE" \
        --batch-size 512 --device "$DEVICE" 2>&1 | tr '\r' '\n' | tail -3
      ;;
    metadata)
      budget "$LIMIT" python3 training/train_metadata.py --cache "$META_CACHE" --out "$MODEL" \
        --steps "$META_STEPS" --checkpoint-every 500 --device "$DEVICE" $META_ARGS 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
      ;;
    metadata-eval)  # the starting folder's g_phi (before this run) on this run's test windows
      rm -rf "$WORK/start-eval" && cp -r "$start" "$WORK/start-eval"
      python3 training/train_metadata.py --cache "$META_CACHE" --out "$WORK/start-eval" --eval-only \
        --device "$DEVICE" $META_EVAL_ARGS 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -20
      cp "$WORK/start-eval/metadata_eval.json" "$RESULTS/metadata_eval-start.json"
      ;;
    metadata-closed)  # resumes the metadata stage's checkpoint: its steps, then these
      budget "$LIMIT" python3 training/train_metadata.py --cache "$META_CACHE" --out "$MODEL" \
        --steps $((META_STEPS + META_CLOSED_STEPS)) --checkpoint-every 100 --device "$DEVICE" \
        $META_ARGS $META_CLOSED_ARGS 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
      ;;
    denoiser)
      budget "$LIMIT" python3 training/train_denoiser.py --cache "$CACHE" --out "$MODEL" \
        --stage cond --steps "$DEN_STEPS" --checkpoint-every 250 --batch-size 128 \
        --max-seconds "$DEN_SECONDS" --device "$DEVICE" $DEN_ARGS \
        2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
      ;;
    decoder)
      budget "$LIMIT" python3 training/train_decoder.py --data "$DATA" --model "$MODEL" \
        --steps "$DEC_STEPS" --checkpoint-every 500 --device "$DEVICE" $DEC_ARGS \
        2>&1 | tr '\r' '\n' | grep -v "it/s" | grep -v "^ *$" | tail -8
      ;;
    contexts)
      python3 training/make_start_contexts.py --data "$DATA" --model "$MODEL" --count "$CONTEXTS"
      ;;
    bench)
      paired "$DATA" test "$BENCH_EPISODES" "$BENCH_STARTS" "$RESULTS/paired.json" \
        --video "$RESULTS/paired.gif"
      ;;
    heldout)  # paired rollouts on every episode of a recording no stage trains on
      held=$WORK/heldout-$HELDOUT_SEED  # recorded once (whole: $held.done), then the same starts
      if [ ! -e "$held.done" ]; then
        rm -rf "$held"
        record sticky-random "$HELDOUT_STEPS" --seed "$HELDOUT_SEED" --out "$held"
        touch "$held.done"
      fi
      paired "$held" all 1000000 "$HELDOUT_STARTS" "$RESULTS/heldout-$HELDOUT_SEED.json" \
        --per-start
      ;;
    rewards)  # the dream's points won and lost against the game's, one JSON per policy
      policies=$REWARDS_POLICIES
      [ -n "$policies" ] || policies=$(python3 -c "from neuralgym.policies import SCRIPTED
print('random scripted' if '$ENV_ID' in SCRIPTED else 'random')")
      for policy in $policies; do
        name=${policy##*/}; name=${name%.zip}
        trace=(); [ -z "$REWARDS_TRACE" ] || trace=(--trace "$RESULTS/rewards-$REWARDS_TAG$name.trace.npz")
        python3 benchmarks/dream_rewards.py --env "$ENV_ID" --model "${REWARDS_MODEL:-$MODEL}" \
          --policy "$policy" --envs "$REWARDS_ENVS" --steps "$REWARDS_STEPS" \
          --denoising-steps 1 --device "$DEVICE" --seed "$SEED" \
          --json "$RESULTS/rewards-$REWARDS_TAG$name.json" "${trace[@]}" $REWARDS_ARGS 2>&1 | tail -12
      done
      ;;
    frames)  # Pong: do the dream's frames show what its metadata says, per context noise
      for level in $FRAMES_NOISE; do
        python3 benchmarks/pong_frames.py --model "$MODEL" --device "$DEVICE" --seed "$SEED" \
          --context-noise "$level" --json "$RESULTS/pong_frames-noise$level.json" $FRAMES_ARGS \
          2>&1 | tr '\r' '\n' | grep -v "step/s" | tail -9
      done
      ;;
    sampler)  # the folder's sampler settings: its dream env noises the context at this level
      python3 - "$MODEL" "$SAMPLER_NOISE" <<'PY'
import sys
from neuralgym.model_folder import ModelFolder
folder = ModelFolder(sys.argv[1])
sampler = {**folder.read_config().get("sampler", {}), "context_noise": float(sys.argv[2])}
folder.update(sampler=sampler)
print(f"{sys.argv[1]}: sampler {sampler}")
PY
      ;;
    partial)  # the run's results, PPO learning curves and logs so far, for a poll to bring back
      # (not the PPO models: with the exports they would pass what one call brings back)
      files=(results)
      for f in "$PPO"/*.curve.csv "$PPO"/*.log; do [ -e "$f" ] && files+=("ppo/${f##*/}"); done
      archive "$game-partial.tgz" --exclude='*.zip' -C "$WORK" "${files[@]}"
      ;;
    ablations)  # training/ablations.sh on this game's data, VAE, g_phi and latent cache
      rc=0
      WORK=${WORK%/"$ENV_ID"} OUT=$OUT bash training/ablations.sh "$ENV_ID" $ABL_GROUPS || rc=$?
      [ "$rc" -eq 0 ] || [ "$rc" -eq 75 ]  # 75: unfinished, resumes when run again
      ;;
    throughput)  # alone on the host: it also measures the real emulator on every core
      python3 benchmarks/throughput.py --model "$MODEL" --env "$ENV_ID" --device "$DEVICE" \
        --json "$RESULTS/$TP_NAME.json" $TP_ARGS 2>&1 | tr '\r' '\n' | tail -60
      ;;
    export)  # two archives per game in $OUT ($OUT takes 8 files of at most 16 MiB)
      rm -rf "$WORK/export"
      python3 training/export_model.py --model "$MODEL" --out "$WORK/export/$game" \
        ${NOTE:+--note "$NOTE"}
      archive "$game-model.tgz" -C "$WORK/export" "$game"
      cp "$MODEL"/*_eval.json "$RESULTS"/ 2>/dev/null || true
      for f in "$PPO"/*.zip; do if [ -e "$f" ]; then cp "$f" "$RESULTS/ppo-${f##*/}"; fi; done
      archive "$game-results.tgz" -C "$RESULTS" .
      ls -la "$OUT"
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
