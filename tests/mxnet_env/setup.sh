#!/usr/bin/env bash
# Builds the throwaway virtualenv in which tests/algorithms/test_ndarray_mxnet.py checks our
# numpy-only NDArray codec (algorithms/io/ndarray.py) against the real MXNet.
#
# Why a separate venv: mxnet 1.9.1 (the last release, what SageMaker's built-in algorithms were
# built on) runs on Python 3.11 only with numpy 1.23.5, which must not go into the main
# environment. Idempotent: does nothing when the venv exists and `import mxnet` works there.
#
#   SMLOCAL_MXNET_VENV   where to build it (default /tmp/smlocal-mxnet-venv)
set -euo pipefail

VENV="${SMLOCAL_MXNET_VENV:-/tmp/smlocal-mxnet-venv}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import mxnet" >/dev/null 2>&1; then
    echo "mxnet venv ready: $VENV ($("$VENV/bin/python" -c 'import mxnet; print("mxnet", mxnet.__version__)' 2>/dev/null))"
    exit 0
fi

if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
    echo "refusing to replace $VENV: it exists and is not a virtualenv" >&2
    exit 1
fi
echo "building mxnet venv in $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q "mxnet==1.9.1" "numpy==1.23.5"
# mxnet 1.9.1 still calls numpy aliases removed later; 1.23.5 keeps them (warnings only).
"$VENV/bin/python" -c "import mxnet; print('mxnet venv ready:', '$VENV', 'mxnet', mxnet.__version__)"
