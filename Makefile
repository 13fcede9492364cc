# mmrm: the two commands of a fresh machine are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# the suite on every core (pytest-xdist; TEST_WORKERS=1 runs it in one process)
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
PYTEST_ARGS ?= -n $(TEST_WORKERS)
SPHINXOPTS ?=
DOCS_BUILD ?= docs/en/_build

.PHONY: help install install-cls demo test docs data canvases downstream clean-venv

help:  ## list the targets with what each does
	@awk 'BEGIN {FS = ":.*##[ ]*"} /^[a-zA-Z_-]+:.*##/ {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install:  ## create .venv with torch, mmcv (ops), mmpretrain, mmdet, mmseg, mmrm (idempotent)
	VENV=$(abspath $(VENV)) bash scripts/install_env.sh

install-cls:  ## classification only (what make demo needs): torch, mmcv WITHOUT ops, mmpretrain, mmrm; `make install` completes it
	VENV=$(abspath $(VENV)) bash scripts/install_env.sh classification

data: install-cls  ## Fashion-MNIST from Debian's dataset-fashion-mnist, in mmpretrain's layout
	$(PY) tools/dataset_converters/prepare_fashion_mnist.py --out data/fashion_mnist

demo: data  ## the main job: a short RecursiveMix training on Fashion-MNIST (CPU, minutes)
	$(PY) tools/demo.py

canvases: install data  ## detection / segmentation data offline: canvases of Fashion-MNIST items
	$(PY) tools/dataset_converters/fashion_mnist_canvases.py --src data/fashion_mnist --out data/fashion_mnist_canvas

downstream: canvases  ## the transfer chain: pretrain, fine-tune ATSS/GFL/Mask R-CNN/HTC/PSPNet/UperNet, score
	$(PY) tools/downstream.py

test: install  ## the whole test suite
	$(PY) -m pytest tests $(PYTEST_ARGS)

docs: install  ## the documentation as HTML in docs/en/_build/html (Sphinx, warnings are errors)
	$(PY) -m sphinx -W --keep-going -b html $(SPHINXOPTS) docs/en $(DOCS_BUILD)/html

clean-venv:  ## remove .venv (the next install starts from scratch)
	rm -rf $(VENV)
