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

# The whole training chain, end to end and offline (examples/pipeline.toml): an offline corpus and its
# counterfactuals, cut into the DAPT curriculum, a few Rolling Recap steps on a tiny local model (built
# offline), SFT on the chat export, DPO on Method A pairs and self-play, each adapter warm-starting the
# next; rerunning continues a killed run. Then the environment's own demo. A few minutes on CPU.
demo: $(STAMP) sysdeps
	$(PY) -m tbn_train.cli make-tiny-model $(DEMO_DIR)/tiny-model
	rm -rf $(DEMO_DIR)/pipeline
	$(PY) -m tbn_train.pipeline run --config examples/pipeline.toml --model $(DEMO_DIR)/tiny-model --out $(DEMO_DIR)/pipeline
	$(PY) -m tbn_env.demo --max-turns 6

bench: $(STAMP) sysdeps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
