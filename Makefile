# The two commands: `make test` and `make demo`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck bench clean mosquitto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

mosquitto:
	@bash scripts/ensure-mosquitto.sh

test: $(STAMP) mosquitto
	$(BIN)/pytest -q

demo: $(STAMP) mosquitto
	$(BIN)/edge demo

lint: $(STAMP)
	$(BIN)/ruff check edge drivers sync simulators tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/edge bench store --json

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache
