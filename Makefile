# The two commands of the README. Both are idempotent and fast once everything is installed.
#   make demo   install everything (Python deps, Debian packages, control-plane binaries), start the lab,
#               run a first experiment (kill the etcd leader) and show its verdict
#   make test   the whole test suite (unit + integration against a real lab of its own)
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo install test test-fast lint bench clean chromium fuzz

$(BIN)/chaoslab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/chaoslab
	$(BIN)/chaoslab lab install

demo: install
	$(BIN)/chaoslab lab status >/dev/null 2>&1 || $(BIN)/chaoslab lab up
	$(BIN)/chaoslab run experiments/etcd-leader-kill.yaml

test: install chromium
	$(BIN)/lint-imports
	$(BIN)/pytest -ra --durations=60

# Headless Chromium renders report.html in a test (tests/unit/reports/test_html_screenshot.py), which is
# skipped without it; Debian's package, installed when root and missing, never fatal.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium not installed: the report screenshot test will be skipped"


test-fast: $(BIN)/chaoslab
	$(BIN)/pytest -ra -m "not integration"

# The long fuzz run of issue 14 (tests/fuzz/): malformed experiments, game days, probe sets and Chaos Toolkit
# files through validate, gameday loading and export; each finding's input is kept in fuzz-findings/.
# The suite runs a few seconds of it (tests/fuzz/test_fuzz_quick.py). About 40 min for 100,000 on 2 cores.
FUZZ_COUNT ?= 100000
FUZZ_SEED ?= 1
fuzz: $(BIN)/chaoslab
	PYTHONPATH=.:tests $(BIN)/python -m fuzz --count $(FUZZ_COUNT) --seed $(FUZZ_SEED) --jobs 2 --findings fuzz-findings

lint: $(BIN)/chaoslab
	$(BIN)/ruff check chaoslab tests bench
	$(BIN)/mypy chaoslab
	$(BIN)/lint-imports

# bench/drain.py compares with Debian's kubectl (kubernetes-client, the lab's 1.20.2), unpacked here rather
# than installed: it would collide with another package's /usr/bin/kubectl. Without it the bench says so.
KUBECTL_DEB := .cache/kubernetes-client
$(KUBECTL_DEB)/usr/bin/kubectl:
	-mkdir -p $(KUBECTL_DEB) && cd $(KUBECTL_DEB) && apt-get download kubernetes-client \
		&& dpkg-deb -x kubernetes-client_*.deb . && rm -f kubernetes-client_*.deb

bench: install $(KUBECTL_DEB)/usr/bin/kubectl
	$(BIN)/python bench/lab_up.py
	$(BIN)/python bench/nodes_scale.py
	$(BIN)/python bench/leader_isolation.py
	$(BIN)/python bench/drain.py --kubectl $(KUBECTL_DEB)/usr/bin/kubectl
