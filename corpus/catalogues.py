"""Loading the authored catalogues in `corpus/data/` (the content App. 17-19 and 26-27 leave out).

Every catalogue is a TOML file shipped with the package; one cached loader reads them all, so
samplers, prompts and tests see the same data.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    """The parsed `corpus/data/<name>.toml`; a clear error when it is missing or malformed."""
    resource = resources.files("corpus").joinpath(f"data/{name}.toml")
    if not resource.is_file():
        raise FileNotFoundError(f"corpus catalogue {name!r} not found at corpus/data/{name}.toml")
    try:
        return tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"corpus/data/{name}.toml is not valid TOML: {exc}") from exc
