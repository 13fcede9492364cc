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
