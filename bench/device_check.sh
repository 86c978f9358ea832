#!/usr/bin/env bash
# The grokking GPU checks, as one script for a machine with an NVIDIA GPU, in order
# of importance, each under its own time limit so a slow stage cannot starve the ones before it:
#   1. bench/device_parity.py: the GPU trains the same function as the CPU (and replica = lone run),
#      and bench/profile_step.py: a nanda2023 step's ops by GPU time;
#   2. the nanda2023 accelerator table, 5 seeds, --quick (2*10^4 full-batch steps a run, ~2 min a
#      variant on an H200), continuing from the runs in bench/gpu-runs/nanda2023-accelerators
#      (imported first: a lease is 15 min, the whole table needs ~10);
#   3. bench/grokking.py --device cuda: batched vs one seed at a time, steps per second;
#   4. power2022, 10 seeds, --quick (10^4 steps), timed: the "10 seeds to grokking in 2 min" target
#      (measured once already: 62 s on an H200), if time is left.
# Catalogs (with figures) end up in $OUT/catalogs.tgz, the nanda2023 runs as a bundle in
# $OUT/nanda-bundle.tgz (unpack it over bench/gpu-runs/nanda2023-accelerators to keep them), and
# everything printed in $OUT/device_check.log.
# On a lent GPU whose image has torch but not all of phenolab's dependencies and no package index,
# put the missing wheels (cp312, manylinux: pydantic, pydantic_core, annotated-types,
# typing-inspection, typing_extensions, mnist1d) in .whl/ and carry that folder along.
#
#   OUT=/tmp/gpu bash bench/device_check.sh [budget seconds, default 540]
#   DEVICE=cpu SMOKE=1 bash bench/device_check.sh   # the script itself, in a minute, anywhere
# Where phenolab is not installed (a bare GPU image), wheels in .whl/ are installed to /tmp/site.
set -u
OUT=${OUT:-/tmp/device_check}
BUDGET=${1:-540}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
stage() { echo; echo "=== $1 (at $(($(date +%s) - start)) s, limit $2 s)"; }

export PYTHONUNBUFFERED=1 COLUMNS=160
if ! "${PYTHON:-python3}" -c "import phenolab" 2>/dev/null; then
    if [ -d .whl ]; then
        "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
PHENOLAB=("$PYTHON" -c "from phenolab.cli import main; main()")
SHORT=()  # SMOKE=1: a few steps everywhere, to try the script itself
[ "${SMOKE:-0}" = 1 ] && SHORT=(--set schedule.steps=4)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader || true
"$PYTHON" -c "import phenolab, torch; print('torch', torch.__version__, '· cuda', torch.cuda.is_available(), '· MKL shim', phenolab._mkl_amd.STATE)"

stage "device parity" 100
timeout 100 "$PYTHON" bench/device_parity.py --device "$DEVICE" --steps $([ ${#SHORT[@]} = 0 ] && echo 10 || echo 2)

stage "where a nanda2023 step's time goes (5 seeds)" 60
timeout 60 "$PYTHON" bench/profile_step.py --setting nanda2023 --seeds 5 --device "$DEVICE" --rows 20 \
    --steps $([ ${#SHORT[@]} = 0 ] && echo 100 || echo 3)

limit=$(( $(left) - 60 ))
stage "nanda2023 accelerators, 5 seeds, --quick" $limit
[ ${#SHORT[@]} = 0 ] && "${PHENOLAB[@]}" import bench/gpu-runs/nanda2023-accelerators --catalog /tmp/cat_nanda
time timeout $limit "${PHENOLAB[@]}" reproduce grokking --setting nanda2023 --compare accelerators --seeds 5 \
    --quick --device "$DEVICE" --catalog /tmp/cat_nanda "${SHORT[@]}"
"${PHENOLAB[@]}" export /tmp/nanda-bundle --catalog /tmp/cat_nanda && tar czf "$OUT/nanda-bundle.tgz" -C /tmp nanda-bundle

limit=$(( $(left) - 10 ))
stage "bench/grokking.py --device $DEVICE" $limit
timeout $limit "$PYTHON" bench/grokking.py --device "$DEVICE" $([ ${#SHORT[@]} = 0 ] && echo --tf-steps 100 || echo --quick)

limit=$(( $(left) - 10 ))
if [ $limit -gt 75 ]; then
    stage "power2022, 10 seeds, --quick" $limit
    time timeout $limit "${PHENOLAB[@]}" reproduce grokking --setting power2022 --seeds 10 --quick --device "$DEVICE" \
        --catalog /tmp/cat_power "${SHORT[@]}"
fi
tar czf "$OUT/catalogs.tgz" -C /tmp cat_power cat_nanda 2>/dev/null
echo "done at $(($(date +%s) - start)) s"
