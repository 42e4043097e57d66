# radview: the two commands a fresh machine needs are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := build/demo
# training/evaluation data (never copied into the repository), see ../shared/data/README.md
DATA ?= ../shared/data

.PHONY: demo test setup lint evaluate train-models benchmark clean package package-test fuzz

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

# TensorFlow and VTK rendering cannot share a process: two pytest runs
test: lint
	$(PY) -m pytest -q -m "not tensorflow"
	$(PY) -m pytest -q -m tensorflow

# Re-measure the shipped models on their held-out test sets; rewrites the metrics in
# resources/models/*/model.json and MODEL_CARD.md (and the plots). A few CPU-minutes.
evaluate:
	$(PY) -m ai evaluate --model cxr-lungs --data $(DATA)
	$(PY) -m ai evaluate --model cxr-covid --data $(DATA)
	@# ct-infection is measured by grouped 5-fold cross-validation (5 trainings, ~80 CPU-minutes):
	@# re-run it only when its results are missing, then rewrite model.json, card and plots
	test -f build/ct-infection-cv/cv.json || $(PY) -m ai train infection --data $(DATA) \
	  --cv-dir build/ct-infection-cv --out build/ct-infection-cv/final
	$(PY) -m ai evaluate --model ct-infection --data $(DATA) --cv-dir build/ct-infection-cv
	$(PY) -m ai.train.eval_ct_lungs $(DATA)/ct-series $(DATA)/ct-slices --png build/ct-lungs-eval

# Retrain the shipped models from scratch (seeded; ~3 CPU-hours on 2 cores), then evaluate.
train-models:
	$(PY) -m ai train lungs --data $(DATA)
	$(PY) -m ai train classifier --data $(DATA)
	$(PY) -m ai train infection --data $(DATA) --cv-dir build/ct-infection-cv

benchmark: setup
	$(PY) benchmarks/convert_load.py
	xvfb-run -a -s "-screen 0 1920x1080x24" $(PY) benchmarks/viewer_fps.py
	$(PY) benchmarks/render_fps.py
	$(PY) benchmarks/ai_inference.py
	$(PY) benchmarks/brush_stroke.py
	$(PY) benchmarks/labelmap_render.py
	$(PY) benchmarks/ct_lungs.py
	$(PY) benchmarks/ai_segment.py
	$(PY) benchmarks/scan_many.py

# Packaged app for clinics (installer/README.md): dist/radview/ (PyInstaller one-folder),
# dist/radview-<version>-linux-<arch>.tar.gz and dist/radview_<version>_<arch>.deb.
# Not part of `make test` (about 10 CPU-minutes and 2 GB of disk).
package: setup
	@$(PY) -c "import PyInstaller" 2>/dev/null || $(VENV)/bin/pip install -q -e ".[package]"
	bash installer/build_package.sh

# Smoke test of what `make package` built: self-test (headless, and offline in a network
# namespace from the unpacked .tar.gz), .deb layout, start-up to first window < 2 s (Xvfb).
package-test:
	bash installer/package_test.sh

# Longer fuzz run of the header scan and pixel decoding (make test runs a bounded one):
# atheris (the "fuzz" extra) when it installs, else hypothesis; MINUTES=10 by default.
# Failures go to build/fuzz/failure-*.dcm (+ .txt traceback); each becomes a regression
# input in tests/core/dicom/fuzz_regressions/ once fixed.
fuzz: setup
	@$(PY) -c "import atheris" 2>/dev/null || $(VENV)/bin/pip install -q -e ".[fuzz]" || true
	$(PY) -m tests.fuzz.fuzz_dicom --minutes $(or $(MINUTES),10)

clean:
	rm -rf build dist .pytest_cache
