# The two commands of the README. Both make .venv when it is missing and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# torch and torchvision are pinned to the releases this workplace keeps on disk; elsewhere the
# same pins come from PyPI.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/petri search --dataset digits --hw cpu-ort --budget-ms 2 \
		--storage sqlite:///petri.db --study demo --max-models 5 --preset cpu --seed 0
	$(BIN)/petri front --storage sqlite:///petri.db --study demo
	$(BIN)/petri pick --storage sqlite:///petri.db --study demo --budget-ms 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check toolchain tests scripts
	$(BIN)/ruff format --check toolchain tests scripts
