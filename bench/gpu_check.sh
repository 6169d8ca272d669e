#!/usr/bin/env bash
# The GPU path, proven in one go (issue 15): on a machine with an NVIDIA GPU, under 10 minutes.
#
#   1. a Python with torch and the project's web stack (and Ray):
#      - with bench/gpu-pack/ here (bench/gpu_pack.py made it): the machine's python3, which has
#        torch, and the pack's wheels and Ray installed offline beside it (pip --no-index --target
#        $SITE), the repository imported from its folder. This is the lent GPU machine's way: it has
#        no network and no ../shared/data, and a device call carries at most 64 MiB;
#      - else the one in $PYTHON, else .venv, else a new .venv-gpu (seeing the system's packages, so
#        a preinstalled CUDA torch is used), where pip can install what is missing;
#   2. the service's CUDA job tests (tests/service/test_cuda_jobs.py: linear, mlp and cifar jobs on
#      "cuda" through the API to the end, predict, cancel, pause/step/resume, the GPU recipe's
#      switches, and the Ray executor's num_gpus=1 path);
#   3. the CIFAR-10 time-to-accuracy benchmark on the GPU (bench/cifar_accuracy.py --recipe gpu:
#      airbench's net, bfloat16 autocast, channels_last, torch.compile), after a warm-up run that
#      fills the compiler's cache, 3 seeds. Target: 94% within 5 s of training.
#
# Everything it prints goes to $OUT/gpu_check.log too ($OUT: the device runner's folder; else
# bench/results/gpu_check-<time>), with the test report and the benchmark's JSON beside it.
# Without a GPU it says so, runs what it can quickly on the CPU (the imports, the CUDA tests'
# collection, which skip, and a one-epoch benchmark on a small subset) and exits 0; with
# GPU_CHECK_REQUIRE_GPU=1 it exits 2 instead.
#
#   .venv/bin/python bench/gpu_pack.py         # here, once (PyPI reachable): bench/gpu-pack/, ~55 MiB
#   device run: command "bash bench/gpu_check.sh", carry ["bench/gpu-pack"], timeout_s 590
#   bash bench/gpu_check.sh                    # anywhere else; it works in the repository root
#   SEEDS="0 1 2" EPOCHS=10 bash bench/gpu_check.sh
#   CIFAR10_DIR=/data/cifar10-jpeg bash bench/gpu_check.sh   # a folder with train.tar/test.tar or cifar10/

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/bench/results/gpu_check-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

SEEDS="${SEEDS:-0 1 2}"
EPOCHS="${EPOCHS:-}"                    # empty: the recipe's own (10)
# One device call may run 10 minutes: the tests, the warm-up and the measured runs fit in about 9.
TEST_TIMEOUT_S="${TEST_TIMEOUT_S:-210}"
WARMUP_TIMEOUT_S="${WARMUP_TIMEOUT_S:-150}"
BENCH_TIMEOUT_S="${BENCH_TIMEOUT_S:-170}"
PACK="${GPU_PACK:-bench/gpu-pack}"
status=0

say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# ----------------------------------------------------------------------------------------------
say "1. Python, the project, torch"

if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import torch' 2>/dev/null; then
    PY=.venv/bin/python
elif [[ -d "$PACK/wheels" ]] && python3 -c 'import torch' 2>/dev/null; then
    PY=python3  # the GPU machine's, which holds its CUDA torch
else
    if [[ ! -x .venv-gpu/bin/python ]]; then
        python3 -m venv --system-site-packages .venv-gpu
    fi
    PY=.venv-gpu/bin/python
fi
echo "python: $PY ($("$PY" --version 2>&1))"

if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "torch is missing: installing torch==2.14.1 torchvision==0.29.1"
    "$PY" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 || {
        echo "FAILED: could not install torch (no network?). Set PYTHON to a Python that has it."
        exit 1
    }
fi
if ! "$PY" -c 'import app.main, httpx, pytest, ray' 2>/dev/null; then
    if [[ -d "$PACK/wheels" ]]; then
        # Offline, beside the machine's packages; the repository is imported from its folder.
        SITE="${SITE:-/tmp/playground-site}"
        echo "installing $PACK offline into $SITE"
        "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            "$PACK"/wheels/*.whl
        for tarball in "$PACK"/ray-*.tar.xz; do
            tar -xJf "$tarball" -C "$SITE"
        done
        export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
        "$PY" -c 'import app.main, httpx, pytest, ray' || { echo "FAILED: the pack does not import (above)"; exit 1; }
    else
        echo "installing the project with its test and ray extras"
        "$PY" -m pip install --quiet -e '.[test,ray]' || {
            echo "FAILED: pip install -e '.[test,ray]' (no network?). Set PYTHON to a Python that has the project."
            exit 1
        }
    fi
fi

"$PY" - <<'EOF' | tee "$OUT/torch.txt"
import torch
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
print(f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi | tee "$OUT/nvidia-smi.txt" || echo "(no nvidia-smi)"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    GPU=1
else
    GPU=0
    say "NO GPU: torch sees no CUDA device here; the GPU checks do not run (CPU fallback below)"
    if [[ "${GPU_CHECK_REQUIRE_GPU:-0}" == 1 ]]; then
        exit 2
    fi
fi

# ----------------------------------------------------------------------------------------------
say "2. the service's CUDA job tests"

if [[ $GPU == 1 ]]; then
    timeout "$TEST_TIMEOUT_S" "$PY" -m pytest tests/service/test_cuda_jobs.py -q -rs -p no:cacheprovider \
        --junitxml="$OUT/test_cuda_jobs.xml" || { echo "FAILED: tests/service/test_cuda_jobs.py (exit $?)"; status=1; }
else
    # Collection only: every test must be there and skip with its reason.
    "$PY" -m pytest tests/service/test_cuda_jobs.py -q -rs -p no:cacheprovider || status=1
fi

# ----------------------------------------------------------------------------------------------
say "3. CIFAR-10 time to accuracy"

# The real CIFAR-10 images: an extracted cifar10/ folder, or the JPEG tars to extract once.
DATA=""
for candidate in "${CIFAR10_DIR:-}" var/test-data ../shared/data/cifar10-jpeg shared/data/cifar10-jpeg "$PACK/cifar10-jpeg"; do
    [[ -n "$candidate" && -d "$candidate" ]] || continue
    if [[ -d "$candidate/cifar10/test" || -d "$candidate/cifar-10-batches-py" ]]; then
        DATA="$candidate"; break
    fi
    for ext in "" .xz; do  # the JPEG tars, or the pack's compressed ones
        if [[ -f "$candidate/train.tar$ext" && -f "$candidate/test.tar$ext" ]]; then
            mkdir -p var/test-data/cifar10
            tar -xf "$candidate/train.tar$ext" -C var/test-data/cifar10
            tar -xf "$candidate/test.tar$ext" -C var/test-data/cifar10
            DATA=var/test-data; break 2
        fi
    done
done

if [[ -z "$DATA" ]]; then
    echo "no CIFAR-10 here (set CIFAR10_DIR): the benchmark runs on the tiny test set instead, as a smoke test"
    DATA="$OUT/tiny-cifar"
    "$PY" -c "from pathlib import Path; from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder as w; w(Path('$DATA'))"
fi
echo "data: $DATA"

BENCH=("$PY" bench/cifar_accuracy.py --part 1 --data-dir "$DATA" --out "$OUT")
if [[ $GPU == 1 ]]; then
    # A warm-up run fills torch.compile's caches (Triton kernels, on disk): the measured runs then
    # pay for the compiler's lookups only, as airbench's timings do.
    say "3a. warm-up (1 epoch on 5,000 images; its figures do not count)"
    timeout "$WARMUP_TIMEOUT_S" "${BENCH[@]}" --device cuda --recipe gpu --seeds 0 --epochs 1 --limit-train 5000 \
        --out "$OUT/warmup" || { echo "FAILED: the warm-up run (exit $?)"; status=1; }
    say "3b. the GPU recipe, seeds $SEEDS"
    # shellcheck disable=SC2086  # SEEDS is a list of numbers
    timeout "$BENCH_TIMEOUT_S" "${BENCH[@]}" --device cuda --recipe gpu --seeds $SEEDS ${EPOCHS:+--epochs "$EPOCHS"} \
        || { echo "FAILED: the GPU benchmark (exit $?)"; status=1; }
else
    say "3. (CPU fallback) the CPU recipe for 1 epoch on 2,000 images: checks the benchmark runs, not its figures"
    timeout "$BENCH_TIMEOUT_S" "${BENCH[@]}" --device cpu --recipe cpu --seeds 0 --epochs 1 --limit-train 2000 \
        || { echo "FAILED: the CPU fallback benchmark (exit $?)"; status=1; }
fi

say "done: $( [[ $GPU == 1 ]] && echo "GPU checks ran" || echo "NO GPU, CPU fallback only" ), exit $status; results in $OUT"
exit "$status"
