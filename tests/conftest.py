"""Shared test configuration: Hypothesis profiles (`ci` when CI is set, `dev` otherwise), and the tiny
random-weight models the trainer and DAPT tests share (built once per session)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub: a test can never download

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=40, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=120, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """A tiny llama and a tiny gemma3_text (sliding-window layers), each with a locally trained tokenizer."""
    from tbn_train.tiny_model import make_tiny_model  # MLX only for the tests that ask for a model

    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_tiny_model(root / arch, arch=arch, seed=0) for arch in ("llama", "gemma3_text")}


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    """Factory (arch, bits) → a 4-layer, hidden-64 random-weight model of that mlx-lm family, built once per session."""
    from tbn_train.tiny_model import FAMILY_HIDDEN, FAMILY_LAYERS, make_tiny_model

    root, built = tmp_path_factory.mktemp("families"), {}

    def build(arch: str, bits: int | None = None):
        if (arch, bits) not in built:
            built[(arch, bits)] = make_tiny_model(root / f"{arch}-{bits or 'full'}", arch=arch, hidden=FAMILY_HIDDEN,
                                                  layers=FAMILY_LAYERS, bits=bits)
        return built[(arch, bits)]

    return build


@pytest.fixture(scope="session")
def dapt_samples(tiny_dirs, tmp_path_factory):
    """DFR and UHD samples of one offline corpus session, tokenized for the tiny llama: the DAPT runs' data."""
    from corpus.generate import generate
    from dapt.preprocess import preprocess

    root = tmp_path_factory.mktemp("dapt-data")
    generate(root / "corpus", n=1, seed=0)
    preprocess(root / "corpus", root / "samples", ("dfr", "uhd"), tokenizer_dir=tiny_dirs["llama"])
    return root / "samples"


@pytest.fixture(scope="session")
def dapt_run_args():
    """`tbn-dapt train` arguments of a small, fast run on a tiny model: argv(model, data, out, steps)."""
    def argv(model, data, out, steps: int) -> list[str]:
        return ["train", "--model", str(model), "--data", str(data), "--out", str(out), "--max-steps", str(steps),
                "--window-tokens", "320", "--recap-max-tokens", "6", "--compressor-slots", "4", "--rank", "4",
                "--learning-rate", "1e-3", "--seed", "2"]
    return argv


@pytest.fixture(scope="session")
def dapt_records():
    """A DAPT run's log without the steps' wall seconds (the one field two equal runs do not share)."""
    import json

    from tbn_train.run_dir import LOG_FILE

    def read(out) -> list[dict]:
        rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
        for row in rows:
            row.pop("seconds", None)
        return rows
    return read


@pytest.fixture(scope="session")
def dapt_outputs():
    """A finished DAPT run's adapter and compressor, as bytes."""
    from dapt.train import ADAPTER_FOLDER, COMPRESSOR_FILE

    return lambda out: ((out / ADAPTER_FOLDER / "adapters.safetensors").read_bytes(),
                        (out / COMPRESSOR_FILE).read_bytes())
