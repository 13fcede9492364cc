#!/usr/bin/env bash
# Creates (or completes) the virtual environment that runs mmrm, at one of two levels:
#
#   install_env.sh classification   what `make demo` needs: torch, mmengine, mmcv 2.1.0 built
#                                   WITHOUT its compiled ops (pure Python, seconds), mmpretrain,
#                                   mmrm. RecursiveMix classification uses no compiled op.
#   install_env.sh full             (default) what `make install` / `make test` need: the above
#                                   with mmcv's compiled ops, plus mmdet, mmsegmentation and the
#                                   test tools. Completes a classification venv in place.
#   install_env.sh --check LEVEL    exit 0 if the venv serves LEVEL, else print why and exit 1.
#
# One venv: a stamp ($VENV/.mmrm-installed, written by scripts/env_stamp.py) records the level,
# the mmcv build in it (ops / noops) and the key of the files that decide the install; when
# nothing changed a rerun only checks the imports. mmcv has no wheel for current torch on PyPI:
# with ops it is built from the sdist once per torch version (~11 min on 2 cores) and the wheel
# kept in $MMRM_CACHE/wheels/<torch-key>/; the build without ops is kept in
# $MMRM_CACHE/wheels/mmcv-<version>-noops/. The classification level takes the cached ops wheel
# when there is one (as fast as the build without ops).
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

check_only=0
if [ "${1:-}" = "--check" ]; then check_only=1; shift; fi
LEVEL=${1:-full}
case "$LEVEL" in
  classification|full) ;;
  *) echo "usage: $0 [--check] [classification|full]   (got '$LEVEL')" >&2; exit 2 ;;
esac

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
stamp="$VENV/.mmrm-installed"

if [ "$check_only" = 1 ]; then
  [ -x "$VENV/bin/python" ] || { echo "no virtual environment at $VENV"; exit 1; }
  key=$("$VENV/bin/python" scripts/env_stamp.py key)
  exec "$VENV/bin/python" scripts/env_stamp.py check --stamp "$stamp" --level "$LEVEL" --key "$key"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

stamp_key=$("$PY" scripts/env_stamp.py key)
if reason=$("$PY" scripts/env_stamp.py check --stamp "$stamp" --level "$LEVEL" --key "$stamp_key"); then
  log "environment up to date for $LEVEL ($VENV, $(grep -E '^(level|mmcv)=' "$stamp" | tr '\n' ' ')); nothing to do"
  exit 0
fi
log "setting up the $LEVEL level ($reason)"
rm -f "$stamp"  # the venv is in flux until the end of this script

# 1. torch: keep the one the user put in the venv (e.g. their own CUDA build), else the default pair.
if have_torch=$("$PY" -c "import torch; print(torch.__version__)" 2>/dev/null); then
  log "keeping installed torch $have_torch"
else
  log "installing $TORCH_SPEC (from local disk where available; a few minutes)"
  pip install $TORCH_SPEC
fi
# mmpretrain imports torchvision; it must be the build matched to torch (minor = torch minor + 15).
if ! "$PY" -c "import torchvision" 2>/dev/null; then
  torch_ver=$("$PY" -c "import torch; print(torch.__version__)")
  tv=$("$PY" -c "import torch; v=torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1])+15}.*')")
  log "installing torchvision==$tv to match torch $torch_ver"
  pip install "torchvision==$tv" "torch==$torch_ver"
fi
# One interpreter start for what the steps below need to know (each start imports torch).
pins="$VENV/.mmrm-pins.txt"
read -r torch_ver with_cuda py_tag torch_ge_214 < <("$PY" - "$pins" <<'PYEOF'
import os, sys
import torch, torchvision
with open(sys.argv[1], 'w') as f:
    f.write(f'torch=={torch.__version__}\ntorchvision=={torchvision.__version__}\n')
cuda = int(torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1')
minor = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
print(torch.__version__, cuda, f'py{sys.version_info[0]}{sys.version_info[1]}', int(minor >= (2, 14)))
PYEOF
)
[ -n "$torch_ge_214" ] || { log "torch or torchvision does not import in $VENV"; exit 1; }

# 2. build tools and mmengine (mmcv's setup.py imports them; setuptools>=80 lacks pkg_resources).
log "installing build tools and mmengine"
pip install -q -c "$pins" -r requirements/build.txt

# 3. mmcv: with ops (full; built once per torch version and cached), or without (classification).
torch_key="torch-${torch_ver}-${py_tag}-cuda${with_cuda}"
ops_dir="$MMRM_CACHE/wheels/$torch_key"
noops_dir="$MMRM_CACHE/wheels/mmcv-$MMCV_VERSION-noops"
mmcv_ver=$("$PY" -c "from importlib.metadata import version; print(version('mmcv'))" 2>/dev/null || echo none)
mmcv_build=$("$PY" scripts/env_stamp.py mmcv)
have_ops_wheel() { ls "$ops_dir"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; }

fetch_mmcv_source() {  # unpacks mmcv's sdist into a new temporary folder, prints the source path
  local build
  build=$(mktemp -d)
  pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build" >&2
  tar xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
  echo "$build/mmcv-$MMCV_VERSION"
}

build_mmcv_with_ops() {
  log "no cached mmcv wheel for $torch_key: building mmcv $MMCV_VERSION with ops from source"
  log "this takes about 11 minutes on 2 cores (once per torch version); compiler progress follows"
  local src build_log
  src=$(fetch_mmcv_source)
  # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
  if [ "$torch_ge_214" = 1 ]; then
    log "torch $torch_ver needs C++20: patching mmcv's -std=c++17 to -std=c++20"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  fi
  mkdir -p "$ops_dir"
  build_log="$MMRM_CACHE/mmcv-build-$torch_key.log"
  log "full build log: $build_log"
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
     "$PY" -m pip --disable-pip-version-check wheel -v --no-deps --no-build-isolation -w "$ops_dir" . 2>&1 \
     | tee "$build_log" | sed -nu -E 's#^ *(\[[0-9]+/[0-9]+\]) .* -c ([^ ]*/)?([^ /]+\.(cpp|cu)) .*#[mmcv build] \1 \3#p; /error:|Error|Created wheel/p' || true)
  rm -rf "$(dirname "$src")"
  have_ops_wheel || { tail -30 "$build_log"; log "mmcv build failed (log: $build_log)"; exit 1; }
}

build_mmcv_without_ops() {
  log "building mmcv $MMCV_VERSION without compiled ops (MMCV_WITH_OPS=0: pure Python, seconds)"
  local src
  src=$(fetch_mmcv_source)
  # mmcv's setup.py names this build 'mmcv-lite'; keep the name 'mmcv' so that pip sees mmcv
  # 2.1.0 installed (mmrm's requirements pin it) and `make install` replaces it in place.
  sed -i "s/name='mmcv' if os.getenv('MMCV_WITH_OPS', '1') == '1' else 'mmcv-lite'/name='mmcv'/" "$src/setup.py"
  grep -q "^    name='mmcv',$" "$src/setup.py" || { log "unexpected mmcv setup.py: cannot keep the name mmcv"; exit 1; }
  mkdir -p "$noops_dir"
  (cd "$src" && MMCV_WITH_OPS=0 pip wheel -q --no-deps --no-build-isolation -w "$noops_dir" .)
  rm -rf "$(dirname "$src")"
}

install_wheel() {  # replaces whatever mmcv the venv holds
  log "installing $(basename "$1") from $(dirname "$1")"
  pip install -q --no-deps --force-reinstall "$1"
}

if [ "$mmcv_ver" = "$MMCV_VERSION" ] && [ "$mmcv_build" = ops ]; then
  log "mmcv $MMCV_VERSION with compiled ops already installed"
elif [ "$LEVEL" = classification ] && [ "$mmcv_ver" = "$MMCV_VERSION" ] && [ "$mmcv_build" = noops ]; then
  log "mmcv $MMCV_VERSION without compiled ops already installed (enough for classification)"
elif [ "$LEVEL" = classification ] && ! have_ops_wheel; then
  ls "$noops_dir"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1 || build_mmcv_without_ops
  install_wheel "$(ls "$noops_dir"/mmcv-$MMCV_VERSION-*.whl | head -1)"
else
  [ "$LEVEL" = classification ] && log "the cached mmcv wheel with ops for $torch_key costs no build: taking it"
  [ "$mmcv_build" = noops ] && log "replacing mmcv without ops (from make demo) by mmcv with compiled ops"
  have_ops_wheel || build_mmcv_with_ops
  install_wheel "$(ls "$ops_dir"/mmcv-$MMCV_VERSION-*.whl | head -1)"
fi

# 4. the OpenMMLab libraries, their undeclared needs, test tools, then mmrm itself.
if [ "$LEVEL" = classification ]; then
  log "installing mmpretrain"
  pip install -q -c "$pins" -r requirements/runtime.txt
else
  log "installing mmpretrain, mmdet, mmsegmentation and test tools"
  pip install -q -c "$pins" -r requirements/runtime.txt -r requirements/downstream.txt -r requirements/tests.txt
fi
log "installing mmrm in editable mode"
pip install -q --no-deps --no-build-isolation -e .

if [ "$LEVEL" = classification ]; then
  "$PY" -c "import mmrm, mmcv, mmpretrain, torch; print('[install] ok (classification): torch', torch.__version__, '| mmcv', mmcv.__version__, '($("$PY" scripts/env_stamp.py mmcv))', '| mmpretrain', mmpretrain.__version__, '| mmrm', mmrm.__version__)"
else
  "$PY" -c "import mmrm, mmcv.ops, mmpretrain, mmdet, mmseg, torch; print('[install] ok (full): torch', torch.__version__, '| mmcv', mmcv.__version__, '(ops) | mmpretrain', mmpretrain.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmrm', mmrm.__version__)"
fi
"$PY" scripts/env_stamp.py write --stamp "$stamp" --level "$LEVEL" --key "$stamp_key"
if [ "$LEVEL" = classification ] && [ "$("$PY" scripts/env_stamp.py mmcv)" = noops ]; then
  log "classification only: detection, segmentation and PVTv2 need mmcv's compiled ops, mmdet and mmsegmentation; 'make install' adds them"
fi
