"""docs/decisions.md lists every tunable number of tbn_env.Params, with its default."""
import ast
import dataclasses
import pathlib

from tbn_env import Params

README = pathlib.Path(__file__).resolve().parents[2] / "docs" / "decisions.md"


def test_readme_lists_every_params_field_with_its_default():
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `Params."):
            name, value = (cell.strip().strip("`") for cell in line.split("|")[1:3])
            rows[name.removeprefix("Params.")] = ast.literal_eval(value)
    for field in dataclasses.fields(Params):
        assert field.name in rows, f"docs/decisions.md lacks Params.{field.name}"
        assert rows[field.name] == field.default, f"docs/decisions.md shows a stale default for Params.{field.name}"
