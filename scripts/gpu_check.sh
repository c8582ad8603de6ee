#!/usr/bin/env bash
# GPU smoke test of an installed monai_sre, from the repository root:
#   scripts/gpu_check.sh [--out DIR] [--device cuda:N]
# Runs the tests marked `cuda`, the layer benchmark on the GPU (JSON and markdown tables in DIR) and two epochs of
# each bundle's default training on the GPU (run folders in DIR), then prints one line per step; exit status 1 if a
# step failed. Needs a CUDA device; nothing is downloaded.
set -u
OUTDIR="gpu_check"; DEVICE="cuda"; PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUTDIR="$2"; shift 2 ;;  --device) DEVICE="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (expected --out DIR or --device cuda[:N]; see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.." || exit 2
case "$DEVICE" in cuda|cuda:[0-9]*) ;; *) echo "gpu_check.sh: --device must be cuda or cuda:N, got $DEVICE" >&2; exit 2 ;; esac
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check.sh: torch sees no CUDA device" >&2; exit 3
fi
"$PY" -c "import torch, monai_sre; print('monai_sre', monai_sre.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p "$OUTDIR"
FAIL=0; SUMMARY=""
step() {  # step NAME command...: runs it, keeps its output in OUTDIR/NAME.log
  local name="$1" t0 rc; shift; t0=$(date +%s)
  echo "=== $name"
  "$@" 2>&1 | tee "$OUTDIR/$name.log"; rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && FAIL=1
  SUMMARY+="$(printf '%-22s %-12s %5d s' "$name" "$([ "$rc" -eq 0 ] && echo ok || echo "failed ($rc)")" $(( $(date +%s) - t0 )))"$'\n'
}
step pytest_cuda "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
step benchmark "$PY" scripts/benchmark.py --device "$DEVICE" --quick --json "$OUTDIR/benchmark.json" --md "$OUTDIR/benchmark.md"
for bundle in sre_r3d sre_r18 sre_unet3d; do
  step "train_$bundle" "$PY" -m monai.bundle run training --config_file "bundles/$bundle/configs/train.json" \
    --device "$DEVICE" --epochs 2 --output_dir "$OUTDIR/$bundle" --progress_bar False
done
echo; echo "=== gpu_check summary (logs in $OUTDIR)"; printf '%s' "$SUMMARY"
exit $FAIL
