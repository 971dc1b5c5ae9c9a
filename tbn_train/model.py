"""Load an mlx-lm model from a local directory or a Hugging Face repository id, as ``mlx_lm.load`` does.

``--model mlx-community/Qwen3-30B-A3B-4bit`` resolves through the Hugging Face cache: a cached
snapshot is used as is, a missing one is downloaded (mlx-lm's file patterns) unless the user set
``HF_HUB_OFFLINE=1``, in which case only the cache is read. Tests never download: they use local
directories and a pre-populated cache folder (``HF_HUB_CACHE``).
"""

from __future__ import annotations

import re
from pathlib import Path

from mlx import nn

# owner/name as the Hub spells repository ids (no leading "." or "/", exactly one slash)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_model_name(name: str) -> str:
    """``name`` if it is a local mlx-lm directory (with config.json) or a Hub repository id; else FileNotFoundError."""
    path = Path(name)
    if (path / "config.json").is_file():
        return name
    if path.exists():
        raise FileNotFoundError(f"not a local mlx-lm model directory (no config.json): {name}")
    if not HUB_ID.match(name):
        raise FileNotFoundError(f"not a local mlx-lm model directory nor a Hugging Face repository id "
                                f"(like mlx-community/Qwen3-8B-4bit): {name}")
    return name


def resolve_model(name: str | Path) -> Path:
    """The local directory of ``name``: itself, or its Hugging Face snapshot (downloaded unless HF_HUB_OFFLINE)."""
    name = check_model_name(str(name))
    if Path(name).exists():
        return Path(name)
    # imported here: mlx_lm costs ~1 s to import, paid only when a model is loaded
    from huggingface_hub import errors, snapshot_download
    from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS

    try:
        path = Path(snapshot_download(name, allow_patterns=DEFAULT_ALLOW_PATTERNS))
    except errors.LocalEntryNotFoundError:
        raise FileNotFoundError(f"model {name!r} is not in the Hugging Face cache and downloading is off "
                                "(HF_HUB_OFFLINE is set, or the Hub is unreachable), and no local directory has that name: "
                                "download it once online, or pass a local directory") from None
    except errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"no local directory and no Hugging Face repository {name!r} "
                                "(check the name, or log in with `hf auth login` for a private one)") from None
    except errors.HfHubHTTPError as exc:
        raise FileNotFoundError(f"could not fetch {name!r} from the Hugging Face Hub: {str(exc).splitlines()[0]}") from None
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the Hugging Face snapshot of {name!r} at {path} has no config.json")
    return path


def load_model(name: str | Path, adapter_path: str | Path | None = None) -> tuple[nn.Module, object]:
    """Return ``(model, tokenizer)`` of a local directory or Hub id (see :func:`resolve_model`) via ``mlx_lm.load``."""
    from mlx_lm import load

    from tbn_train.read_files import loading

    path = resolve_model(name)
    if adapter_path is not None and not (Path(adapter_path) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"not an mlx-lm adapter directory (no adapter_config.json): {adapter_path}")
    with loading(path if adapter_path is None else f"{path} (adapter {adapter_path})", "mlx-lm model"):
        return load(str(path), adapter_path=None if adapter_path is None else str(adapter_path))
