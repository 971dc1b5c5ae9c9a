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

# The main job on the embedded default, end to end and offline: an offline corpus is cut into the
# DAPT curriculum, a tiny local model (built offline) gets a few Rolling Recap steps, and the DAPT
# adapter warm-starts the therapist in self-play, scored by the offline rubric judge against the
# template client. A few minutes on CPU.
demo: $(STAMP) sysdeps
	$(PY) -m tbn_train.cli make-tiny-model $(DEMO_DIR)/tiny-model
	rm -rf $(DEMO_DIR)/corpus $(DEMO_DIR)/dapt $(DEMO_DIR)/dapt-run $(DEMO_DIR)/selfplay $(DEMO_DIR)/eval
	$(PY) -m corpus.cli generate --n 2 --out $(DEMO_DIR)/corpus
	$(PY) -m dapt.cli preprocess --corpus $(DEMO_DIR)/corpus --out $(DEMO_DIR)/dapt --tokenizer $(DEMO_DIR)/tiny-model
	$(PY) -m dapt.cli train --model $(DEMO_DIR)/tiny-model --data $(DEMO_DIR)/dapt --out $(DEMO_DIR)/dapt-run \
	    --max-steps 4 --window-tokens 512 --recap-max-tokens 24
	$(PY) -m tbn_train.cli selfplay --model $(DEMO_DIR)/tiny-model --init-adapter $(DEMO_DIR)/dapt-run/adapter \
	    --sessions 2 --max-turns 3 --max-new-tokens 24 --out $(DEMO_DIR)/selfplay
	$(PY) -m tbn_train.cli eval --model $(DEMO_DIR)/tiny-model --adapter $(DEMO_DIR)/dapt-run/adapter \
	    --adapter $(DEMO_DIR)/selfplay/therapist --sessions 2 --max-turns 3 --max-new-tokens 24 --out $(DEMO_DIR)/eval
	$(PY) -m tbn_env.demo --max-turns 6

bench: $(STAMP) sysdeps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
