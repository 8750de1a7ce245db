# Two commands on a fresh machine:  `make train`  (set up + run the main job)  and  `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
FRAMEWORK ?= flax
EPOCHS  ?= 100
MODEL   ?= both
FW      := $(shell python3 -m experiment.frameworks name $(FRAMEWORK) 2>/dev/null)
OUT     ?= runs/$(FW)
ARGS    ?=
# The data `make train` was given, remembered for the next `make train` and for `make test`'s real-data tests.
DATA_FILE ?= .cifar10-path
CIFAR10 ?= $(shell cat $(DATA_FILE) 2>/dev/null)
TRAIN_MODULE := $(shell python3 -m experiment.frameworks train $(FRAMEWORK))

.PHONY: setup train test
setup: $(VENV)/.installed

# torch first and pinned: that CPU build is the one this project is tested with, and asking for
# it alone keeps pip from resolving a multi-GB CUDA build when the extras name `torch`.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[torch,jax,dev,tensorboard]"
	touch $@

train: setup
	@test -n "$(TRAIN_MODULE)" || exit 2  # an unknown FRAMEWORK: experiment.frameworks said which in one line
	@if [ -e "$(CIFAR10)" ]; then realpath "$(CIFAR10)" > $(DATA_FILE); fi
	CIFAR10="$(CIFAR10)" $(PY) -m $(TRAIN_MODULE) --model $(MODEL) --epochs $(EPOCHS) --out $(OUT) $(ARGS)

test: setup
	CIFAR10="$(CIFAR10)" $(PY) -m pytest $(ARGS)
