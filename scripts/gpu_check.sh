#!/usr/bin/env bash
# The GPU run of issue "Ready where learners run it", as one script (make gpu-check): on a machine
# with CUDA, the cuda tests, every notebook (labkit.setup() picks the GPU), the full-depth E2B-shaped
# pair and the half-precision identity check. Figures land in ${OUT:-runs/gpu-check}/.
set -uo pipefail  # no -e: on a lent GPU every step should run even when one fails; each writes its own log
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu-check}"
mkdir -p "$out"
py=.venv/bin/python
$py -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this check is for a GPU machine'; print(torch.cuda.get_device_name())" | tee "$out/device.txt" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/device.txt" || true
$py -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/test_cuda.txt"
# every notebook once, one at a time, torch on the GPU (labkit.setup picks it); then the checks of the copies
make executed JOBS=1 THREADS= 2>&1 | tee "$out/executed.txt"
$py -m pytest -q -p no:cacheprovider -m notebooks tests/test_notebooks.py tests/test_audit.py 2>&1 | tee "$out/notebooks.txt"
cp tests/artifacts/notebook_times.json "$out/" 2>/dev/null || true
$py scripts/real_shape.py --out "${TMPDIR:-/tmp}/e2b-full" --layers 35 2>&1 | grep -v "Loading weights\|Writing model" | tee "$out/real_shape.txt"
cp "${TMPDIR:-/tmp}/e2b-full/measured.json" "$out/real_shape.json"
$py scripts/half_precision.py --device cuda --json "$out/half_precision.json" 2>&1 | tee "$out/half_precision.txt"
