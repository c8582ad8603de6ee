#!/usr/bin/env bash
# One-shot check of monai_sre on a CUDA machine that has torch but no internet (8 minutes at most, BUDGET=480 s).
#   here, with internet:  scripts/gpu_check.sh --prepare-wheels wheels   (this venv's versions, torch excluded)
#   there, repo root:     scripts/gpu_check.sh --wheels wheels --data /path/to/medmnist [--out /tmp/gpu_check]
# Steps, each under `timeout`: install the missing wheels into OUT/site, `pytest -m cuda`, scripts/benchmark.py
# (table + JSON), a 90 s training of SRE-R3D-18 on AdrenalMNIST3D, a summary table. --dry-run: tiny, on CPU.
set -u
WHEELS=""; DATA="${MONAI_SRE_DATA:-../shared/data/medmnist}"; OUTDIR="${OUT:-/tmp/gpu_check}"; DRY=0; PREPARE=""
BUDGET="${BUDGET:-480}"; PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;  --data) DATA="$2"; shift 2 ;;  --out) OUTDIR="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;  --prepare-wheels) PREPARE="$2"; shift 2 ;;  --python) PY="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.." || exit 2

if [ -n "$PREPARE" ]; then
  mkdir -p "$PREPARE" && "$PY" scripts/wheels.py requirements > "$PREPARE/requirements.txt" || exit 2
  echo "downloading $(wc -l < "$PREPARE/requirements.txt") wheels into $PREPARE"
  while read -r req; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 --platform any -d "$PREPARE" "$req" || echo "WARNING: no wheel for $req"
  done < "$PREPARE/requirements.txt"
  exit 0
fi

mkdir -p "$OUTDIR"; START=$(date +%s); declare -a NAMES STATUS SECS
record() { NAMES+=("$1"); STATUS+=("$2"); SECS+=("$3"); }
step() {  # step NAME MAX_SECONDS command...
  local name="$1" max="$2" t0 rc st=ok; shift 2; t0=$(date +%s)
  local left=$(( BUDGET - (t0 - START) )); [ "$left" -lt "$max" ] && max=$left
  if [ "$max" -le 5 ]; then record "$name" "skipped (budget)" 0; return; fi
  echo "=== $name (limit ${max}s)"
  timeout --kill-after=10 "$max" "$@" 2>&1 | tee "$OUTDIR/$name.log"; rc=${PIPESTATUS[0]}
  [ "$rc" -eq 124 ] && st="timeout"; [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && st="failed (rc $rc)"
  record "$name" "$st" $(( $(date +%s) - t0 ))
}

DEVICE=cuda; [ "$DRY" -eq 1 ] && DEVICE=cpu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "$WHEELS" ]; then record install "skipped (no --wheels)" 0
else
  export PYTHONPATH="$OUTDIR/site:$PYTHONPATH"
  "$PY" scripts/wheels.py missing "$WHEELS" > "$OUTDIR/to_install.txt"
  echo "installing $(wc -l < "$OUTDIR/to_install.txt") wheels from $WHEELS"
  if [ -s "$OUTDIR/to_install.txt" ]; then
    step install 120 xargs -a "$OUTDIR/to_install.txt" "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$OUTDIR/site"
  else record install "ok (nothing missing)" 0; fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [ "$DRY" -eq 0 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check.sh: CUDA is not available; use --dry-run to test the script on CPU" >&2; exit 3
fi

step pytest_cuda 90 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
if [ "$DRY" -eq 1 ]; then
  step benchmark 200 "$PY" scripts/benchmark.py --device cpu --quick --sections layers --json "$OUTDIR/bench.json" --md "$OUTDIR/bench.md"
  step training 120 "$PY" scripts/benchmark.py --device cpu --sections "" --train-data "$DATA" --train-seconds 20 --train-batch 4 --widths 8,16,32,64 --json "$OUTDIR/train.json"
else
  step benchmark 240 "$PY" scripts/benchmark.py --device cuda --json "$OUTDIR/bench.json" --md "$OUTDIR/bench.md"
  step training 150 "$PY" scripts/benchmark.py --device cuda --sections "" --train-data "$DATA" --train-seconds 90 --train-batch 32 --json "$OUTDIR/train.json"
fi

echo; echo "=== gpu_check summary (device $DEVICE, $(( $(date +%s) - START )) s of ${BUDGET} s; logs and JSON in $OUTDIR)"
printf '| %-12s | %-22s | %6s |\n|%s|%s|%s|\n' step status seconds "--------------" "------------------------" "--------"
FAIL=0
for i in "${!NAMES[@]}"; do
  printf '| %-12s | %-22s | %6s |\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}"
  case "${STATUS[$i]}" in ok*|skipped*) ;; *) FAIL=1 ;; esac
done
[ -f "$OUTDIR/train.json" ] && "$PY" -c "import json,sys; t=json.load(open(sys.argv[1]))['training']; print('training: {iterations} it, {samples_per_s:.1f} samples/s, test acc {test_accuracy:.3f}'.format(**t))" "$OUTDIR/train.json"
exit $FAIL
