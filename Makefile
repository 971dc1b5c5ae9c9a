# `make test` and `make demo` bootstrap everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,train,corpus,sb3,render

.PHONY: test demo bench sysdeps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first: the CPU build already on disk, so stable-baselines3 does not pull a CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Debian's OpenBLAS makes the mlx[cpu] wheel ~35x faster on matmuls (tbn_train preloads it when present).
sysdeps:
	@if [ "$$(uname -s)" = Linux ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	   && ! ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then \
	  (apt-get update -qq && apt-get install -y -qq libopenblas0-pthread >/dev/null) \
	  || echo "note: libopenblas0-pthread not installed; MLX falls back to its bundled BLAS"; \
	fi

test: $(STAMP) sysdeps
	$(PY) -m pytest

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
