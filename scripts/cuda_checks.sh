#!/usr/bin/env bash
# The CUDA checks of RecursiveMix in one run: op timing, the no-synchronisation check, the cost
# report (Table 10) on GPU and a short RM training of the demo config. Each step writes its
# log to OUT_DIR and the run goes on when one fails; the exit status is the number of failed
# steps.
#
#   bash scripts/cuda_checks.sh [OUT_DIR]      (default work_dirs/cuda_checks)
#
# Environment: PYTHON (default: the repository's .venv/bin/python if any, else python),
# ROI_BACKEND (the RoI head's roi_backend: matmul, the default and what RM trains with, or
# mmcv | torchvision to check those kernels; mmcv needs its CUDA ops), DEMO (1: train the
# 4-epoch Fashion-MNIST demo config from data/fashion_mnist, as `make demo` does on CPU; 0
# skips it), ONLY (space-separated step names to run, e.g. ONLY="sync cost_b32"; default all).
set -u
OUT_DIR=${1:-work_dirs/cuda_checks}
source "$(dirname "$0")/../tools/python.sh"
PY=$PYTHON
# the head's default: the checks measure what a config without roi_backend trains with
ROI_BACKEND=${ROI_BACKEND:-matmul}
DEMO=${DEMO:-1}
CFG=configs/rm/resnet50_8xb32_in1k_rm.py
OPTS="model.roi_head.roi_backend=${ROI_BACKEND}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
failed=0

step() {  # step NAME COMMAND...: run, log to OUT_DIR/NAME.log, count a failure
    local name=$1
    shift
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    echo "=== $name: $* ($(date +%T))"
    "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc ($(date +%T))"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

step env "$PY" -c "
import torch, torchvision, numpy, mmengine, mmcv, mmpretrain
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())
print('torchvision', torchvision.__version__, 'numpy', numpy.__version__, 'mmengine',
      mmengine.__version__, 'mmcv', mmcv.__version__, 'mmpretrain', mmpretrain.__version__)"

# the one-gather nearest resize must equal F.interpolate on the GPU kernels too
step nearest "$PY" -c "
import torch, torch.nn.functional as F
from mmrm.models.batch_augments.resize_fill import nearest_resize
n = 0
for h, w in [(28, 28), (32, 32), (224, 224), (256, 320)]:
    src = torch.randn(4, 3, h, w, device='cuda')
    for oh in range(1, h + 1, 3):
        for ow in (1, w // 3, w - 1, w):
            assert torch.equal(nearest_resize(src, oh, ow),
                               F.interpolate(src, size=(oh, ow), mode='nearest')), (h, w, oh, ow)
            n += 1
print(f'nearest_resize == F.interpolate(nearest) on CUDA for {n} output sizes')"

# the matmul 1x1 RoIAlign (default roi_backend) == torchvision's RoIAlign kernel on CUDA
step roi_matmul "$PY" -c "
import torch, torchvision
from mmrm.models import RoIConsistencyHead
head = RoIConsistencyHead(num_classes=3, in_channels=8)
g = torch.Generator().manual_seed(0)
n = 0
for h, w, stride in [(7, 7, 32), (14, 14, 16), (4, 6, 8), (9, 5, 3)]:
    feat = torch.randn(4, 8, h, w, device='cuda')
    for _ in range(50):
        x1, x2 = sorted(torch.randint(0, w * stride + 1, (2,), generator=g).tolist())
        y1, y2 = sorted(torch.randint(0, h * stride + 1, (2,), generator=g).tolist())
        box = (x1, y1, x2, y2)
        rois = torch.tensor([[i, *box] for i in range(4)], dtype=torch.float32, device='cuda')
        ref = torchvision.ops.roi_align(feat, rois, 1, 1 / stride, 0, True).flatten(1)
        torch.testing.assert_close(head.pool(feat, box, (h * stride, w * stride)), ref,
                                   rtol=1e-5, atol=1e-5)
        n += 1
print(f'matmul RoI pooling == torchvision RoIAlign on CUDA for {n} boxes')"

step op_time "$PY" tools/analysis_tools/benchmark_batch_augment.py --device cuda --repeats 300

step sync "$PY" tools/analysis_tools/cuda_sync_check.py "$CFG" --batch 32 \
    --json "$OUT_DIR/sync.json" --cfg-options "$OPTS"

# batch 32: the config's images per GPU (8 GPUs x 32)
step cost_b32 "$PY" tools/analysis_tools/rm_cost_report.py "$CFG" --batch 32 --repeats 30 \
    --warmup 5 --profile 5 --device cuda --json "$OUT_DIR/cost_b32.json" --cfg-options "$OPTS"

step cost_b128 "$PY" tools/analysis_tools/rm_cost_report.py "$CFG" --batch 128 --repeats 30 \
    --warmup 5 --memory none --device cuda --json "$OUT_DIR/cost_b128.json" --cfg-options "$OPTS"

if [ "$DEMO" = 1 ]; then
    step demo_train "$PY" tools/train.py configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py \
        --work-dir "$OUT_DIR/demo" --cfg-options "$OPTS" train_dataloader.num_workers=8 val_dataloader.num_workers=8 randomness.seed=0
fi
echo "failed steps: $failed"
exit "$failed"
