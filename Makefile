# `make test` and `make demo` bootstrap everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,train,corpus,sb3,render

.PHONY: test test-fast lint demo bench sysdeps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch (for the sb3 extra only) goes first, as a CPU build, so stable-baselines3 does not pull the
# multi-GB CUDA build pip picks by default on Linux: a local wheel if pip's find-links has one (only
# torch itself comes from there), else PyTorch's CPU index; if neither answers, the sb3 extra is left
# out (its tests skip) and we say so.
TORCH         ?= torch==2.13.0
TORCH_CPU_URL ?= https://download.pytorch.org/whl/cpu
$(STAMP): pyproject.toml | $(PY)
	@extras="$(EXTRAS)"; \
	if [ "$$(uname -s)" != Linux ]; then \
	  $(PY) -m pip install --quiet "$(TORCH)"; \
	elif $(PY) -m pip install --quiet --no-index --no-deps "$(TORCH)" 2>/dev/null; then \
	  echo "torch: installed $(TORCH) from a local wheel (its dependencies come with the extras)"; \
	elif $(PY) -m pip install --quiet --index-url $(TORCH_CPU_URL) "$(TORCH)"; then \
	  echo "torch: installed the CPU build of $(TORCH) from $(TORCH_CPU_URL)"; \
	else \
	  extras=$$(echo "$$extras" | tr ',' '\n' | grep -vx sb3 | paste -sd, -); \
	  echo "note: no CPU build of $(TORCH) found (local wheels or $(TORCH_CPU_URL)); installing without the sb3 extra"; \
	fi; \
	$(PY) -m pip install --quiet -e ".[$$extras]"
	touch $(STAMP)

# Debian's OpenBLAS makes the mlx[cpu] wheel ~35x faster on matmuls (tbn_train preloads it when present).
# This changes the system (an apt package), so it says so first; NO_SYSDEPS=1 skips it.
sysdeps:
	@if [ -z "$(NO_SYSDEPS)" ] && [ "$$(uname -s)" = Linux ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	   && ! ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then \
	  echo "sysdeps: installing the system package libopenblas0-pthread with apt-get (faster MLX on CPU;" \
	       "make NO_SYSDEPS=1 skips this)"; \
	  (apt-get update -qq && apt-get install -y -qq libopenblas0-pthread >/dev/null \
	   && echo "sysdeps: libopenblas0-pthread installed") \
	  || echo "note: libopenblas0-pthread not installed; MLX falls back to its bundled BLAS"; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check .

# every test; `make test-fast` leaves out those marked slow (kill-and-resume runs, training loops)
test: lint sysdeps
	$(PY) -m pytest

test-fast: lint sysdeps
	$(PY) -m pytest -m "not slow"

DEMO_DIR ?= runs/demo

# The whole training chain, end to end and offline (examples/pipeline.toml): an offline corpus and its
# counterfactuals, cut into the DAPT curriculum, a few Rolling Recap steps on a tiny local model (built
# offline), SFT on the chat export, DPO on Method A pairs and self-play, each adapter warm-starting the
# next; rerunning continues a killed run. Then the DAPT start adapter and the self-play therapist are
# evaluated side by side on held-out clients, and the environment's own demo runs. A few minutes on CPU.
demo: $(STAMP) sysdeps
	$(PY) -m tbn_train.cli make-tiny-model $(DEMO_DIR)/tiny-model
	rm -rf $(DEMO_DIR)/pipeline $(DEMO_DIR)/eval
	$(PY) -m tbn_train.pipeline run --config examples/pipeline.toml --model $(DEMO_DIR)/tiny-model --out $(DEMO_DIR)/pipeline
	$(PY) -m tbn_train.cli eval --model $(DEMO_DIR)/tiny-model --adapter $(DEMO_DIR)/pipeline/rra/adapter \
	    --adapter $(DEMO_DIR)/pipeline/selfplay/therapist --sessions 2 --max-turns 3 --max-new-tokens 24 --out $(DEMO_DIR)/eval
	$(PY) -m tbn_env.demo --max-turns 6

bench: $(STAMP) sysdeps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
