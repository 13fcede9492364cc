#!/usr/bin/env bash
# The ranking study's runs (docs/en/results/ranking.md), in the preregistered order, resumable:
# every run is a keyed run of the comparison's run cache, its record published into
# results/fashion_mnist/<regime>/ as it finishes, and a published record of the same key is a
# finished run, so a rerun (on this machine or a new one) trains only what is missing.
#
#   setsid bash scripts/ranking_runs.sh     # all arms; at the lowest CPU priority
#   RANKING_ARMS="1" bash scripts/ranking_runs.sh   # only arm 1 (steps: 2sel 1 3 probe 2)
#
# Environment: PYTHON (default .venv/bin/python), DATA_ROOT (default data/fashion_mnist),
# RESULTS (default results/fashion_mnist), JOBS (runs at once, default 2: one thread each).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
DATA_ROOT=${DATA_ROOT:-$ROOT/data/fashion_mnist}
RESULTS=${RESULTS:-$ROOT/results/fashion_mnist}
JOBS=${JOBS:-2}
ARMS=${RANKING_ARMS:-2sel 1 3 probe 2}
# `nice` alone is not the lowest priority on Linux with autogroups (the default): each session
# is one group, and groups share the CPU equally whatever their processes' nice values, so the
# runs would take half the cores from a test run in another session. Started in a session of
# its own (setsid bash scripts/ranking_runs.sh), the script nices that group too; started from
# a terminal it leaves the terminal's group alone.
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/self/autogroup ]; then
  echo 19 > /proc/self/autogroup 2>/dev/null || true
fi
RANKED="baseline mixup cutmix manifold-mixup feature-cutmix rm rm-no-rs"

compare() {  # the comparison tool at the lowest priority; it skips finished / published runs
  echo "[ranking $(date +%H:%M:%S)] compare_fashion_mnist.py $*"
  nice -n 19 "$PY" tools/analysis_tools/compare_fashion_mnist.py --data-root "$DATA_ROOT" \
    --export "$RESULTS" --jobs "$JOBS" --threads 1 "$@" \
    --figure "$ROOT/work_dirs/ranking_scratch_figure.png"
}

select_second_regime() {  # the not-tiny arm's selection runs until a regime is chosen
  local regime status
  while true; do
    set +e; regime=$("$PY" tools/analysis_tools/rank_mixers.py --choose "$RESULTS"); status=$?; set -e
    if [ "$status" = 0 ]; then echo "$regime"; return 0; fi
    [ "$status" = 3 ] || { echo "rank_mixers.py --choose failed ($status)" >&2; return 1; }
    compare --regime "$regime" --methods baseline cutmix --seeds 0 1 2 >&2
  done
}

for arm in $ARMS; do
  case "$arm" in
    2sel) select_second_regime >/dev/null ;;
    1) compare --regime scarce-20 --methods $RANKED --seeds $(seq 0 18) --table-seeds 0 1 2 ;;
    3) compare --regime scarce-20-56px --methods baseline cutmix rm rm-no-rs --seeds 0 1 2 3 4 ;;
    probe) echo "[ranking $(date +%H:%M:%S)] P2: rank_mixers.py --probe"
       nice -n 19 "$PY" tools/analysis_tools/rank_mixers.py --probe "$ROOT/results/probes/history_boxes.json" \
         --work-root "$ROOT/work_dirs/fashion_mnist_compare" --data-root "$DATA_ROOT" ;;
    2) regime=$(select_second_regime); echo "[ranking] the not-tiny arm's regime: $regime"
       compare --regime "$regime" --methods $RANKED --seeds 0 1 2 3 4 ;;
    *) echo "unknown step '$arm' (allowed: 2sel 1 3 probe 2)" >&2; exit 2 ;;
  esac
done
echo "[ranking $(date +%H:%M:%S)] done: python tools/analysis_tools/rank_mixers.py --report $RESULTS"
