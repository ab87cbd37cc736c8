# Shortcuts for contributors. `make test` is exactly what CI runs (.ci/run -> ./run-tests.sh).
PY := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: test test-fast lint format
test:            ## everything CI runs: installs test deps, ruff, mypy, the whole pytest suite
	./run-tests.sh

test-fast:       ## the core, storage, KV, node units, simulation and chart tests (no processes, no Docker)
	$(PY) -m pytest tests/unit tests/chart -q -x

lint:            ## the static gates alone
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format:          ## rewrite the code in the one style the gate checks (ruff format)
	$(PY) -m ruff format .
