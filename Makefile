# yimi-bot: `make run` runs the bot, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/yimi-bot run

browser:
	@# Debian's chromium for the simulator's browser test (never `playwright install`), and a
	@# CJK font so its screenshots show Chinese. Needs root; otherwise the test is skipped.
	@if test -x /usr/bin/chromium && fc-list 2>/dev/null | grep -qi wqy; then :; \
	elif test "$$(id -u)" = 0 && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium fonts-wqy-microhei >/dev/null || echo "apt-get failed: chromium not installed"; \
	else echo "chromium not installed (run make browser as root): the browser test will be skipped"; fi

.PHONY: sim-test
sim-test: $(STAMP) browser
	$(BIN)/pytest -q tests/test_simulator.py

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) browser lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/wecom_callback.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
