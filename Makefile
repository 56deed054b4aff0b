# Set-up and the two commands the README promises. A virtual environment in .venv keeps the
# project's packages apart from the machine's; torch is pinned here (a CPU build) only for
# development and CI, the package itself accepts any torch>=2.4 (users bring their CUDA builds).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml $(wildcard contrib_graders/*/pyproject.toml)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# the structured extra without its triton dependency (GPU kernels, 285 MB; the CPU path needs none)
	$(PY) -m pip install -q --no-deps 'xgrammar>=0.2' apache-tvm-ffi
	$(PY) -m pip install -q $(wildcard contrib_graders/*/)
	touch $@

.PHONY: install test check demo wordnet libseccomp chromium light-check
install: $(VENV)/.installed wordnet libseccomp

# METEOR's synonyms: Debian's WordNet (wordnet-base) where apt-get runs as root. Elsewhere this
# only says so, and METEOR matches exact words and stems (docs/graders.md).
wordnet:
	@test -f /usr/share/wordnet/data.noun || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wordnet-base; } \
	  || echo "wordnet-base not installed: METEOR will run without WordNet synonyms"

# The python grader's sandbox filters system calls through libseccomp.so.2 (Debian's libseccomp2,
# present wherever apt is). Without it python graders report python_grader_server_error.
libseccomp:
	@ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libseccomp2; } \
	  || echo "libseccomp2 not installed: python graders will report python_grader_server_error (docs/sandbox.md)"

# The run report's browser test (tests/test_report.py) loads report.html in Debian's headless
# chromium, installed here where apt-get runs as root. Elsewhere this only says so, and the test
# is skipped (as root with apt-get it fails instead: CI must run it).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	  || echo "chromium not installed: the run report's browser test cannot run (docs/report.md)"

test: $(VENV)/.installed wordnet libseccomp chromium
	$(PY) -m pytest -q

# Lint, type check and layering contracts (configured in pyproject.toml); CI runs it before the tests.
check: $(VENV)/.installed
	VENV=$(VENV) .ci/check

demo: $(VENV)/.installed
	$(VENV)/bin/rft train --demo

# The light install, as a grader user gets it: `pip install rft-plugins` without extras, in its
# own venv, then the check the tests run there (every built-in grader type, the TRL adapter's
# reward functions, no training stack imported or installed). Prints one JSON report.
LIGHT_VENV ?= .venv-light
light-check:
	python3 -m venv $(LIGHT_VENV)
	$(LIGHT_VENV)/bin/python -m pip install -q .
	$(LIGHT_VENV)/bin/python tests/light_install_check.py
	@du -sh $(LIGHT_VENV)/lib/python3*/site-packages
