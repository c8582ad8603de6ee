#!/usr/bin/env bash
# One-shot check of monai_sre on a CUDA machine (about 8 minutes at most).
#
# The GPU machine has Python 3.12 with torch preinstalled but no internet and none of monai, torchio,
# nibabel, pytorch-ignite or medmnist. Prepare a wheel folder HERE (with internet), from the repo root:
#
#   scripts/gpu_check.sh --prepare-wheels wheels      # pip download --no-deps --only-binary=:all:
#                                                     #   --python-version 3.12 --platform manylinux...
#                                                     # of every dependency (pinned to this venv's
#                                                     # versions), torch/nvidia/triton excluded
# and carry `wheels/` (and the MedMNIST npz folder) to the GPU machine. There, from the repo root:
#
#   scripts/gpu_check.sh --wheels wheels --data /path/to/medmnist [--out /tmp/gpu_check]
#
# Steps (each under `timeout`, the whole run within BUDGET=480 s): pip install from the wheel folder
# into a private --target dir, `pytest -m cuda`, scripts/benchmark.py --device cuda (table + JSON),
# a ~90 s real training of SRE-R3D-18 on AdrenalMNIST3D, then a summary table.
# `--dry-run` does the same on CPU with tiny settings (no install unless --wheels is given), to test
# the script itself on a machine without a GPU.
set -u
WHEELS="" ; DATA="${MONAI_SRE_DATA:-../shared/data/medmnist}" ; OUTDIR="${OUT:-/tmp/gpu_check}" ; DRY=0
PREPARE="" ; BUDGET="${BUDGET:-480}" ; PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --prepare-wheels) PREPARE="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.." || exit 2

if [ -n "$PREPARE" ]; then
  mkdir -p "$PREPARE"
  "$PY" - > "$PREPARE/requirements.txt" <<'PYEOF'
import re
from importlib import metadata
skip = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|setuptools|pip|wheel)$")
todo, seen = ["monai", "pytorch-ignite", "torchio", "nibabel", "medmnist", "pytest", "pytest-timeout", "fire", "pyyaml", "tqdm", "scipy"], {}
while todo:
    name = re.split(r"[ ;<>=!~\[(]", todo.pop())[0].lower().replace("_", "-")
    if not name or name in seen or skip.match(name):
        continue
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    seen[name] = dist.version
    todo += [r for r in (dist.requires or []) if "extra ==" not in r]
print("\n".join(f"{n}=={v}" for n, v in sorted(seen.items())))
PYEOF
  echo "downloading $(wc -l < "$PREPARE/requirements.txt") wheels into $PREPARE"
  while read -r req; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 --platform any -d "$PREPARE" "$req" || echo "WARNING: no wheel for $req"
  done < "$PREPARE/requirements.txt"
  exit 0
fi

mkdir -p "$OUTDIR"
START=$(date +%s)
declare -a NAMES STATUS SECS
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
step() {  # step NAME MAX_SECONDS command...
  local name="$1" max="$2"; shift 2
  local budget; budget=$(left); [ "$budget" -lt "$max" ] && max=$budget
  local t0; t0=$(date +%s)
  if [ "$max" -le 5 ]; then NAMES+=("$name"); STATUS+=("skipped (budget)"); SECS+=(0); return; fi
  echo "=== $name (limit ${max}s)"
  timeout --kill-after=10 "$max" "$@" 2>&1 | tee "$OUTDIR/$name.log"
  local rc=${PIPESTATUS[0]} st=ok
  [ "$rc" -eq 124 ] && st="timeout" ; [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && st="failed (rc $rc)"
  NAMES+=("$name"); STATUS+=("$st"); SECS+=($(( $(date +%s) - t0 )))
}

DEVICE=cuda
if [ "$DRY" -eq 1 ]; then DEVICE=cpu; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "$WHEELS" ]; then
  export PYTHONPATH="$OUTDIR/site:$PYTHONPATH"
  # only the wheels whose distribution the machine lacks (keeps its numpy/scipy/torchvision if present)
  "$PY" - "$WHEELS" > "$OUTDIR/to_install.txt" <<'PYEOF'
import glob, os, sys
from importlib import metadata
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.whl"))):
    name = os.path.basename(path).split("-")[0].replace("_", "-")
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(path)
PYEOF
  echo "installing $(wc -l < "$OUTDIR/to_install.txt") wheels from $WHEELS"
  if [ -s "$OUTDIR/to_install.txt" ]; then
    step install 120 xargs -a "$OUTDIR/to_install.txt" "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$OUTDIR/site"
  else
    NAMES+=(install); STATUS+=("ok (nothing missing)"); SECS+=(0)
  fi
else
  NAMES+=(install); STATUS+=("skipped (no --wheels)"); SECS+=(0)
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

echo
echo "=== gpu_check summary (device $DEVICE, $(( $(date +%s) - START )) s of ${BUDGET} s; logs and JSON in $OUTDIR)"
printf '| %-12s | %-22s | %6s |\n' step status seconds
printf '|%s|%s|%s|\n' "--------------" "------------------------" "--------"
FAIL=0
for i in "${!NAMES[@]}"; do
  printf '| %-12s | %-22s | %6s |\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}"
  case "${STATUS[$i]}" in ok*|skipped*) ;; *) FAIL=1 ;; esac
done
[ -f "$OUTDIR/train.json" ] && "$PY" -c "import json,sys; t=json.load(open(sys.argv[1]))['training']; print('training: {iterations} it, {samples_per_s:.1f} samples/s, test acc {test_accuracy:.3f}'.format(**t))" "$OUTDIR/train.json"
exit $FAIL
