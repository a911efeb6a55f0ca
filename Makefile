# The two commands a new user needs on a fresh machine, and the checks CI runs.
#   make demo   - controller + simulated massager and sensor + embedded MQTT broker, no hardware
#   make test   - the test suite
# Both create .venv and install SoleGuard into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/soleguard demo $(ARGS)

test: $(STAMP)
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# Mutation testing of controller/safety against tests/safety (tools/mutate.py; slow: about
# 10 s per mutant, ~300 mutants). ARGS="--sample 40" for a quick estimate.
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py --report docs/mutation.json $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
