# mcunas developer tasks. `make demo` and `make test` are all a new user needs (see README.md).
# Every target that runs Python depends on `setup`, which builds .venv once (a stamp file makes
# re-running it a no-op until pyproject.toml or constraints.txt change).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mcunas-setup-stamp
# torch comes first and alone, at the version pinned in constraints.txt: with it installed, the
# CPU build satisfies the `torch` requirement and pip pulls no CUDA packages.
TORCH_PIN := $(shell grep -E '^torch==' constraints.txt)

.PHONY: setup demo test setup-browser setup-postgres

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,postgres]"
	touch $(STAMP)

# The main job: a small hardware-aware search (digits, Arduino Nano 33 BLE Sense), its exports and report.
demo: setup
	$(BIN)/mcunas search experiments/quickstart.yaml --out runs/quickstart

# The whole suite, slow end-to-end and fault cases included (`pytest -m "not slow"` for the fast ones).
# Tests whose server or privilege is missing skip with the reason (in CI, CI=true, they fail):
# `make setup-browser` and `make setup-postgres` (as root) provide them.
test: setup
	$(BIN)/pytest

# Chromium and its WebDriver for the report's browser test (Debian packages; needs root).
setup-browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium and chromedriver are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	else \
		echo "chromium/chromedriver missing and this is not root: the browser test will be skipped"; \
	fi

# A PostgreSQL server on 127.0.0.1 with the test role of tests/conftest.py (Debian package; needs root).
setup-postgres:
	bash .ci/postgres
