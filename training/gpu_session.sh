#!/usr/bin/env bash
# A GPU lease's whole run in the background, so that device calls only poll it (a call is
# capped at 10 minutes; the host stays leased while calls follow each other):
#
#   bash training/gpu_session.sh start ENV_ID GROUP [GROUP ...]
#   bash training/gpu_session.sh poll ENV_ID SECONDS [--copy]
#   bash training/gpu_session.sh poll-all SECONDS ENV_ID [ENV_ID ...]
#
# A GROUP is one argument: training/gpu_pipeline.sh stages run in order, optionally after
# VAR=value words that apply to that group only ("LIMIT=240 vae latents"). A group that starts
# with '&' ("&ppo-real") runs beside the groups after it; "wait" waits for all of those. The
# run stops at the first foreground group that fails. `poll` waits until the run is done (or
# failed, or SECONDS passed), prints the logs' tails, and with --copy copies the exports
# ($WORK/ENV_ID/out), the logs (logs.tgz) and, while the run goes on, its results and PPO
# learning curves so far (<game>-partial.tgz, the pipeline's partial stage) into $OUT, the
# folder the device tool brings back. `poll-all` polls several games' runs on one host (each
# with --copy, its logs as <game>-logs.tgz), the wait going to the first listed that still
# runs, polled first. Example (one lease, one game; see README, "Training a
# world model"):
#
#   bash training/gpu_session.sh start NeuralBreakout-v0 "setup record" "&ppo-real" \
#     "LIMIT=240 vae latents contexts" "&decoder" "metadata" "denoiser" "wait" "bench export"
set -euo pipefail
cmd=${1:?usage: gpu_session.sh start|poll ENV_ID ...}; ENV_ID=${2:?usage: gpu_session.sh $cmd ENV_ID ...}
shift 2
ROOT=${WORK:-/root/neuralgym-work}; LOGS=$ROOT/$ENV_ID/logs
self=$(realpath "$0"); cd "$(dirname "$self")/.."

run_group() {  # VAR=value ... stage ...
  local vars=() stages=()
  for w in $1; do
    if [[ $w == *=* && ${#stages[@]} -eq 0 ]]; then vars+=("$w"); else stages+=("$w"); fi
  done
  env "${vars[@]}" OUT="$ROOT/$ENV_ID/out" bash training/gpu_pipeline.sh "$ENV_ID" "${stages[@]}"
}

case $cmd in
  start)
    [ $# -gt 0 ] || { echo "gpu_session.sh start: give at least one group of stages" >&2; exit 2; }
    mkdir -p "$LOGS"; rm -f "$LOGS"/{DONE,FAILED} "$LOGS"/*.log  # a new run, new logs
    setsid nohup bash "$self" run "$ENV_ID" "$@" > "$LOGS/session.log" 2>&1 < /dev/null &
    echo "started: logs in $LOGS"
    ;;
  run)
    t0=$(date +%s); n=0
    note() { echo "[session +$(( $(date +%s) - t0 ))s] $*"; }
    for group in "$@"; do
      n=$((n + 1))
      if [ "$group" = wait ]; then
        note "waiting for the background groups"; wait; note "background groups done"
      elif [[ $group == \&* ]]; then
        note "background $n: ${group#&} (log: $LOGS/group$n.log)"
        ( run_group "${group#&}" > "$LOGS/group$n.log" 2>&1 \
          && echo "[done]" >> "$LOGS/group$n.log" || echo "[failed]" >> "$LOGS/group$n.log" ) &
      else
        note "group $n: $group"
        run_group "$group" || { note "group $n failed"; touch "$LOGS/FAILED"; exit 1; }
      fi
    done
    wait; note done; touch "$LOGS/DONE"
    ;;
  poll)
    seconds=${1:?usage: gpu_session.sh poll ENV_ID SECONDS [--copy]}
    end=$(( $(date +%s) + ${seconds%.*} ))
    while [ "$(date +%s)" -lt "$end" ] && [ ! -e "$LOGS/DONE" ] && [ ! -e "$LOGS/FAILED" ]; do
      sleep 2
    done
    for f in "$LOGS"/*.log; do echo "== $f"; tr '\r' '\n' < "$f" | grep -v "it/s\]$" | tail -25 || true; done
    state=running; [ -e "$LOGS/DONE" ] && state=done; [ -e "$LOGS/FAILED" ] && state=failed
    echo "session: $state"
    if [ "${2:-}" = --copy ]; then
      : "${OUT:?--copy needs \$OUT}"
      cp -r "$ROOT/$ENV_ID/out/." "$OUT"/ 2>/dev/null || true
      tar czf "$OUT/logs.tgz" -C "$LOGS" .  # one file: $OUT takes few
      # while the run goes on, or after a group failed (no export ran), also its results and
      # PPO learning curves so far: a host lost before the last export still leaves what the
      # last poll brought back, and a failed group's run what the groups before it wrote
      if [ "$state" != done ]; then
        WORK=$ROOT OUT=$OUT bash training/gpu_pipeline.sh "$ENV_ID" partial > /dev/null \
          || echo "poll: could not archive the results so far (a file written meanwhile?)" >&2
      fi
    fi
    ;;
  poll-all)  # several games' runs on one host: the wait goes to the first still running
    seconds=$ENV_ID; [ $# -gt 0 ] || { echo "usage: gpu_session.sh poll-all SECONDS ENV_ID ..." >&2; exit 2; }
    : "${OUT:?poll-all copies into \$OUT}"
    waiting=""
    for id in "$@"; do
      l=$ROOT/$id/logs
      if [ -d "$l" ] && [ ! -e "$l/DONE" ] && [ ! -e "$l/FAILED" ]; then waiting=$id; break; fi
    done
    order=(${waiting:+"$waiting"})  # the waited-for game first: the others' copies after it
    for id in "$@"; do [ "$id" = "$waiting" ] || order+=("$id"); done
    found=0
    for id in "$@"; do [ -d "$ROOT/$id/logs" ] && found=1; done
    [ $found = 1 ] || { echo "poll-all: no run of $* under $ROOT (WORK=$WORK); start one, or set WORK" >&2; exit 1; }
    for id in "${order[@]}"; do
      [ -d "$ROOT/$id/logs" ] || continue
      s=0; [ "$id" = "$waiting" ] && s=$seconds
      bash "$self" poll "$id" "$s" --copy
      game=${id#Neural}; game=${game%-v0}
      mv "$OUT/logs.tgz" "$OUT/${game,,}-logs.tgz"
    done
    ;;
  *) echo "unknown command $cmd (start, poll, poll-all)" >&2; exit 2 ;;
esac
