# radview: the two commands a fresh machine needs are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := build/demo

.PHONY: demo test setup lint evaluate benchmark clean

setup:
	@bash installer/bootstrap.sh

demo: setup
	@$(PY) -m viewer.core.demo $(DEMO_DIR) >/dev/null
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  $(VENV)/bin/radview $(DEMO_DIR); \
	else \
	  echo "No display: rendering the demo study headless instead of opening the window."; \
	  $(VENV)/bin/radview info $(DEMO_DIR); \
	  $(VENV)/bin/radview screenshot $(DEMO_DIR)/ct --layout 2x2 --window lung --out build/demo-ct.png; \
	  $(VENV)/bin/radview screenshot $(DEMO_DIR)/cr --out build/demo-cr.png; \
	fi

lint: setup
	$(VENV)/bin/ruff check viewer ai tests benchmarks
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

benchmark: setup
	$(PY) benchmarks/convert_load.py
	xvfb-run -a -s "-screen 0 1920x1080x24" $(PY) benchmarks/viewer_fps.py
	$(PY) benchmarks/render_fps.py

clean:
	rm -rf build .pytest_cache
