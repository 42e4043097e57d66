# radview: the two commands a fresh machine needs are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := build/demo

.PHONY: demo test setup lint evaluate benchmark clean

setup:
	@bash installer/bootstrap.sh

demo: setup
	@$(PY) -m viewer.core.demo $(DEMO_DIR) >/dev/null
	@$(VENV)/bin/radview info $(DEMO_DIR)

lint: setup
	$(VENV)/bin/ruff check viewer ai tests benchmarks
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

benchmark: setup
	$(PY) benchmarks/convert_load.py

clean:
	rm -rf build .pytest_cache
