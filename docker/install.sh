#!/bin/sh
# Installs PyTorch Playground into a fresh virtual environment, in two steps so that Docker caches
# the large torch layer apart from the source that changes often:
#
#   install.sh torch   create $VIRTUAL_ENV and install the pinned torch and torchvision
#   install.sh app     install the project in the current directory (the build context) into it
#
# Both read docker/constraints.txt (the other packages' versions, from `make lock`).
#
# The Dockerfile's builder stage runs exactly these two lines, and tests/deploy/test_build.py runs the
# Dockerfile's own RUN lines against a clean copy of the build context, so the two cannot drift.
#
# Environment (the Dockerfile sets each from a build argument):
#   VIRTUAL_ENV          where to create the environment (required)
#   PYTHON               interpreter that creates it (default: python3)
#   FLAVOR               cpu or cuda (default: cpu); picks the default torch index
#   TORCH_VERSION        e.g. 2.14.1 (required for the torch step)
#   TORCHVISION_VERSION  e.g. 0.29.1 (required for the torch step)
#   TORCH_INDEX_URL      the index torch comes from; empty picks the flavour's default,
#                        "default" means pip's own configured index (PyPI)
set -eu

usage="usage: install.sh torch|app"
step="${1:?$usage}"
: "${VIRTUAL_ENV:?install.sh: set VIRTUAL_ENV to the virtual environment to create}"
FLAVOR="${FLAVOR:-cpu}"

case "$FLAVOR" in
  # CPU-only wheels: a few hundred MB instead of several GB of CUDA libraries.
  cpu) flavor_index=https://download.pytorch.org/whl/cpu ;;
  # PyPI's Linux x86_64 torch wheels are the CUDA builds, with their CUDA runtime as pip packages.
  cuda) flavor_index=default ;;
  *)
    echo "install.sh: FLAVOR must be 'cpu' or 'cuda', got '$FLAVOR'" >&2
    exit 2
    ;;
esac
index="${TORCH_INDEX_URL:-$flavor_index}"

# Everything but torch and torchvision at the versions `make lock` recorded, so that a rebuild
# next month installs what was tested (run from the build context, where the file is).
constraints=docker/constraints.txt
if [ ! -f "$constraints" ]; then
  echo "install.sh: $constraints is missing; run it from the build context ('make lock' writes the file)" >&2
  exit 2
fi

# No pip cache: it would only add its size to the layer.
pip_install() {
  "$VIRTUAL_ENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check -c "$constraints" "$@"
}

case "$step" in
  torch)
    : "${TORCH_VERSION:?install.sh: set TORCH_VERSION (e.g. 2.14.1)}"
    : "${TORCHVISION_VERSION:?install.sh: set TORCHVISION_VERSION (e.g. 0.29.1)}"
    "${PYTHON:-python3}" -m venv "$VIRTUAL_ENV"
    if [ "$index" = default ]; then
      set --
    else
      set -- --index-url "$index"
    fi
    # "torch==2.14.1" also matches the index's local versions such as 2.14.1+cpu (PEP 440).
    pip_install "$@" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
    ;;
  app)
    if [ ! -x "$VIRTUAL_ENV/bin/python" ]; then
      echo "install.sh: $VIRTUAL_ENV has no python; run 'install.sh torch' first" >&2
      exit 2
    fi
    # A regular (not editable) install: the runtime stage copies only the environment. The torch
    # pinned above satisfies the project's range, so pip keeps it instead of fetching PyPI's build.
    pip_install .
    "$VIRTUAL_ENV/bin/python" -c "import app.cli, torch; print('installed: torch', torch.__version__)"
    ;;
  *)
    echo "install.sh: unknown step '$step'; $usage" >&2
    exit 2
    ;;
esac
