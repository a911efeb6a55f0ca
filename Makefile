# The two commands a new user needs on a fresh machine, and the checks CI runs.
#   make demo   - controller + simulated massager and sensor + embedded MQTT broker, no hardware
#   make test   - the test suite
# Both create .venv and install SoleGuard into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test proofs flakes lint bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/soleguard demo $(ARGS)

# Test workers (pytest-xdist): each test keeps its own broker, radio and folders, so tests run
# side by side; three on two cores overlap the real-time tests' waits with the CPU-bound ones.
# TEST_WORKERS=0 runs in one process (for -s, pdb, or a profile).
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(ARGS)

# The long run of the property proofs: >= 10,000 state-machine examples of the safety supervisor
# and 10,000 examples of the command and settings properties (the protocol's properties fix their
# own count). CI runs it as its own step.
PROOF_TESTS := tests/safety/test_properties.py tests/caregiver/test_commands.py \
	tests/settings/test_settings.py
proofs: $(STAMP)
	HYPOTHESIS_PROFILE=proof $(BIN)/pytest -q $(PROOF_TESTS) $(ARGS)

# Flake finder: run the suite (or ARGS, e.g. a test file) RUNS times beside LOAD busy loops and
# list every test that failed at least once. `make flakes LOAD=2` loads both cores of a 2-core box.
RUNS ?= 5
LOAD ?= 0
flakes: $(STAMP)
	$(BIN)/python tools/flake_finder.py --runs $(RUNS) --load $(LOAD) -- -n $(TEST_WORKERS) --dist worksteal $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# Mutation testing of controller/safety against tests/safety (tools/mutate.py: a fork per mutant,
# fast tests first; ~330 mutants, 2-30 s each on the shared machine). ARGS="--sample 40" for a
# quick estimate, ARGS="--only FILE:INDEX,..." to re-test the survivors of docs/mutation.json.
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py --report docs/mutation.json $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
