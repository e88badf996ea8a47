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

.PHONY: setup demo test test-all setup-browser

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The main job: a small hardware-aware search (digits, Arduino Nano 33 BLE Sense), its exports and report.
demo: setup
	$(BIN)/mcunas search experiments/quickstart.yaml --out runs/quickstart

# Fast tests (the slow end-to-end cases are marked `slow`).
test: setup
	$(BIN)/pytest -m "not slow"

test-all: setup
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
