#!/usr/bin/env bash
# Creates (or completes) the virtual environment that runs mmrm: torch, the OpenMMLab stack with
# mmcv's compiled ops, test tools, and mmrm itself in editable mode.
#
# Idempotent: a stamp records what was installed; when nothing changed a rerun only checks the
# imports. mmcv has no wheel for current torch on PyPI, so it is built from the sdist once per
# torch version and the wheel kept in $MMRM_CACHE/wheels/<torch-key>/ for every later install.
#
# Environment:
#   VENV        venv folder (default .venv at the repo root)
#   PYTHON      interpreter that creates the venv (default python3)
#   MMRM_CACHE  cache folder (default ${XDG_CACHE_HOME:-~/.cache}/mmrm)
#   TORCH_SPEC  torch requirement when the venv has none (default torch==2.14.1 torchvision==0.29.1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
MMRM_CACHE=${MMRM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmrm}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_VERSION=2.1.0

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

# The stamp covers everything that decides what gets installed.
stamp_key=$(cat scripts/install_env.sh requirements/*.txt setup.py | sha256sum | cut -c1-16)
stamp="$VENV/.mmrm-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_key" ] \
   && "$PY" -c "import mmcv.ops, mmpretrain, mmdet, mmseg, mmrm, pytest" 2>/dev/null; then
  log "environment up to date ($VENV); nothing to do"
  exit 0
fi

# 1. torch: keep the one the user put in the venv (e.g. their own CUDA build), else the default pair.
if "$PY" -c "import torch" 2>/dev/null; then
  log "keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  log "installing $TORCH_SPEC (from local disk where available; a few minutes)"
  pip install $TORCH_SPEC
fi
torch_ver=$("$PY" -c "import torch; print(torch.__version__)")
# mmpretrain imports torchvision; it must be the build matched to torch (minor = torch minor + 15).
if ! "$PY" -c "import torchvision" 2>/dev/null; then
  tv=$("$PY" -c "import torch; v=torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1])+15}.*')")
  log "installing torchvision==$tv to match torch $torch_ver"
  pip install "torchvision==$tv" "torch==$torch_ver"
fi
pins="$VENV/.mmrm-pins.txt"
"$PY" - > "$pins" <<'PYEOF'
import torch, torchvision
print(f'torch=={torch.__version__}')
print(f'torchvision=={torchvision.__version__}')
PYEOF

# 2. build tools and mmengine (mmcv's setup.py imports them; setuptools>=80 lacks pkg_resources).
log "installing build tools and runtime requirements"
pip install -q -c "$pins" -r requirements/build.txt

# 3. mmcv with ops, built once per torch version and cached.
with_cuda=$("$PY" -c "import torch, os; print(int(torch.cuda.is_available() or os.getenv('FORCE_CUDA','0')=='1'))")
torch_key="torch-${torch_ver}-$("$PY" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')-cuda${with_cuda}"
wheel_dir="$MMRM_CACHE/wheels/$torch_key"
if "$PY" -c "import mmcv, mmcv._ext, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  if ! ls "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
    log "no cached mmcv wheel for $torch_key: building mmcv $MMCV_VERSION with ops from source"
    log "this takes about 10 minutes on 2 cores; compiler progress follows"
    build=$(mktemp -d)
    pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build"
    tar xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
    if "$PY" -c "import torch,sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 14))"; then
      log "torch $torch_ver needs C++20: patching mmcv's -std=c++17 to -std=c++20"
      sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    fi
    mkdir -p "$wheel_dir"
    build_log="$MMRM_CACHE/mmcv-build-$torch_key.log"
    log "full build log: $build_log"
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
       "$PY" -m pip --disable-pip-version-check wheel -v --no-deps --no-build-isolation -w "$wheel_dir" . 2>&1 \
       | tee "$build_log" | sed -nu -E 's#^ *(\[[0-9]+/[0-9]+\]) .* -c ([^ ]*/)?([^ /]+\.(cpp|cu)) .*#[mmcv build] \1 \3#p; /error:|Error|Created wheel/p' || true)
    rm -rf "$build"
    ls "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1 || { tail -30 "$build_log"; log "mmcv build failed (log: $build_log)"; exit 1; }
  fi
  log "installing mmcv from $wheel_dir"
  pip install -q --no-deps --force-reinstall "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl
fi

# 4. the OpenMMLab libraries, their undeclared needs, test tools, then mmrm itself.
log "installing mmpretrain, mmdet, mmsegmentation and test tools"
pip install -q -c "$pins" -r requirements/runtime.txt -r requirements/tests.txt
log "installing mmrm in editable mode"
pip install -q --no-deps --no-build-isolation -e .

"$PY" -c "import mmrm, mmcv.ops, mmpretrain, mmdet, mmseg, torch; print('[install] ok: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmpretrain', mmpretrain.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmrm', mmrm.__version__)"
echo "$stamp_key" > "$stamp"
