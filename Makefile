# The two commands of the README. Both build .venv from the project's own files.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test venv venv-dev browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet $(TORCH)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

demo: venv  ## set up and run the main job: grokking (gromov2023, 5 seeds as one batched program), signature, figure, report
	$(BIN)/phenolab demo

test: venv-dev browser  ## set up and run the tests: ruff, then pytest
	$(BIN)/ruff check phenolab tests bench examples _phenolab_launcher.py
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

browser:  ## headless Chromium for tests/report/test_browser.py (Debian packages; installed only when missing and root)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "browser: apt-get could not install chromium; tests/report/test_browser.py will be skipped"; \
	else echo "browser: not root or no apt-get: install chromium and chromium-driver, or tests/report/test_browser.py is skipped"; fi

bench: venv
	$(BIN)/python bench/batched_vs_loop.py
	$(BIN)/python bench/lottery_study.py --quick
	$(BIN)/python bench/double_descent_sweep.py --quick
	$(BIN)/python bench/sweep_throughput.py --quick
	$(BIN)/python bench/catalog_scale.py --quick
	$(BIN)/python bench/grokking.py --quick

clean:
	rm -rf $(VENV) phenolab-catalog .pytest_cache .ruff_cache
