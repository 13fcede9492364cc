# Sourced by the shell tools (not run): sets MMRM_ROOT and PYTHON, the interpreter that runs
# mmrm. $PYTHON if set (e.g. a conda env's python), else the repository's .venv/bin/python when
# `make install` made one, else `python` on PATH. So the commands work as printed right after
# `make install`, without activating anything.
MMRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$MMRM_ROOT/.venv/bin/python" ]; then
        PYTHON="$MMRM_ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

# mmrm_check_stack CONFIG: stop (exit 3) with a clear message, before any rank starts, when CONFIG
# needs what this environment lacks (mmcv's compiled ops, mmdet, mmseg: a detection or
# segmentation config in the classification-only .venv of `make demo`; `make install` adds them).
mmrm_check_stack() {
    PYTHONPATH="$MMRM_ROOT":$PYTHONPATH "$PYTHON" "$MMRM_ROOT/mmrm/utils/stack.py" "$1" || exit $?
}
