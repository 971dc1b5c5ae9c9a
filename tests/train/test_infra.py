"""OpenBLAS preload, tiny model, generation, config and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import numpy as np
import pytest

from tbn_train import blas
from tbn_train.cli import main as cli_main
from tbn_train.config import TrainConfig, add_config_arguments, config_from_args
from tbn_train.generation import generate, generate_candidates
from tbn_train.model import load_model

FORWARD_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    import tbn_train
    from tbn_train.blas import openblas_active
    import mlx.core as mx
    from tbn_train.model import load_model
    model, tok = load_model(sys.argv[1])
    ids = tok.apply_chat_template([{"role": "user", "content": "I feel a little lighter today."}], add_generation_prompt=True)
    np.save(sys.argv[2], np.array(model(mx.array([ids])).astype(mx.float32)))
    print(openblas_active())
    """
)


@pytest.mark.slow
@pytest.mark.skipif(blas.find_openblas() is None, reason="libopenblas0-pthread not installed")
def test_openblas_preload_gives_same_logits(llama_dir, tmp_path):
    outs = {}
    for label, extra in (("on", {}), ("off", {blas.DISABLE_ENV: "1"})):
        env = {k: v for k, v in os.environ.items() if k != blas.DISABLE_ENV} | extra
        res = subprocess.run([sys.executable, "-c", FORWARD_SCRIPT, str(llama_dir), str(tmp_path / label)],
                             env=env, capture_output=True, text=True, check=True)
        outs[label] = (res.stdout.strip().splitlines()[-1], np.load(tmp_path / f"{label}.npy"))
    assert outs["on"][0] == "True" and outs["off"][0] == "False"
    assert np.allclose(outs["on"][1], outs["off"][1], atol=1e-4, rtol=1e-4)


PRODUCT_SCRIPT = """
import hashlib, tbn_train, mlx.core as mx, numpy as np
h = hashlib.sha256()
for m, k, n in ((37, 288, 96), (5, 288, 768), (320, 96, 288), (257, 333, 129)):
    a, b = mx.random.normal((m, k), key=mx.random.key(m)), mx.random.normal((k, n), key=mx.random.key(n))
    h.update(np.array(a @ b).tobytes())
print(hashlib.sha256(h.digest()).hexdigest())
"""


@pytest.mark.skipif(blas.find_openblas() is None, reason="libopenblas0-pthread not installed")
def test_product_bits_do_not_depend_on_the_process_thread_settings():
    """The flaky resume test's nondeterminism: OpenBLAS's bits depend on its thread count, which it read from
    each process's environment and CPUs (failed before: OPENBLAS_NUM_THREADS=1 gave other bits)."""
    digests = set()
    for threads in ("1", "2", None):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", blas.DISABLE_ENV,
                                                                  blas.THREADS_ENV)}
        if threads:
            env["OPENBLAS_NUM_THREADS"] = threads
        res = subprocess.run([sys.executable, "-c", PRODUCT_SCRIPT], env=env, capture_output=True, text=True, check=True)
        digests.add(res.stdout.strip())
    assert len(digests) == 1

def test_tiny_models_are_consistent_and_deterministic(tiny_dirs, tmp_path):
    for arch, path in tiny_dirs.items():
        model, tok = load_model(path)
        cfg = json.loads((path / "config.json").read_text())
        assert tok.eos_token_ids == {cfg["eos_token_id"]} == {tok.convert_tokens_to_ids("<|end|>")}
        ids = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True)
        assert tok.decode(ids).endswith("<|assistant|>\n")
        assert model(mx.array([ids])).shape == (1, len(ids), cfg["vocab_size"])
    again = cli_main(["make-tiny-model", str(tmp_path / "again"), "--arch", "llama"])
    assert again == 0
    a, b = mx.load(str(tiny_dirs["llama"] / "model.safetensors")), mx.load(str(tmp_path / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all(mx.array_equal(a[k], b[k]).item() for k in a)
    with pytest.raises(FileNotFoundError, match="not a local mlx-lm model"):
        load_model(tmp_path / "missing")


def test_generation_candidates_and_eos(setup, prompt_of):
    model, tok, router = setup
    router.active = "therapist"
    prompt = prompt_of(tok, "I had a panic attack.")
    mx.random.seed(0)
    cands = generate_candidates(model, tok, prompt, (0.6, 0.7, 0.8, 0.9), max_tokens=6)
    assert len(cands) == 4 and all(1 <= len(c.tokens) <= 6 for c in cands)
    with pytest.raises(ValueError, match="cap from §9.3.10"):
        generate(model, tok, prompt, temperature=1.0)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate_candidates(model, tok, [], max_tokens=4)
    # make every token a stop token: each completion is exactly its (kept) EOS id
    saved = tok.eos_token_ids
    tok.eos_token_ids = set(range(model.args.vocab_size))
    try:
        one = generate(model, tok, prompt, temperature=0.7, max_tokens=5)
        many = generate_candidates(model, tok, prompt, (0.6, 0.9), max_tokens=5)
    finally:
        tok.eos_token_ids = saved
    for c in [one, *many]:
        assert c.finished and len(c.tokens) == 1 and c.text == ""


def test_config_files_and_flag_overrides(tmp_path):
    import argparse

    (tmp_path / "c.toml").write_text("[train]\nattn_rank = 8\nkl_coef = 0.1\n")
    (tmp_path / "c.json").write_text(json.dumps({"mlp_rank": 4}))
    (tmp_path / "c.yaml").write_text("learning_rate: 0.001\n")
    assert TrainConfig.from_file(tmp_path / "c.toml").attn_rank == 8
    assert TrainConfig.from_file(tmp_path / "c.json").mlp_rank == 4
    assert TrainConfig.from_file(tmp_path / "c.yaml").learning_rate == 1e-3
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--config", str(tmp_path / "c.toml"), "--kl-coef", "0.5", "--lora-layers", "2", "3"]))
    assert (cfg.attn_rank, cfg.kl_coef, cfg.lora_spec().layers) == (8, 0.5, (2, 3))
    with pytest.raises(ValueError, match="cap from §9.3.10"):
        TrainConfig(grpo_temperatures=[0.6, 1.0])
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(unknown_setting=1)
