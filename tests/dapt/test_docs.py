"""The root README's dapt choices table lists every `# choice:` constant of dapt with its value."""
import ast
import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHOICE = re.compile(r"^([A-Z][A-Z0-9_]*) = .*# choice:", re.MULTILINE)


def table() -> dict[str, str]:
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def shown(cell: str):
    """The literal a value cell starts with: '(2, 4, 8) turns' → (2, 4, 8); '2048 content tokens' → 2048."""
    text = cell.strip("`")
    if text.startswith("("):
        return ast.literal_eval(text[: text.index(")") + 1])
    return ast.literal_eval(text.split()[0])


def test_every_dapt_choice_is_in_the_readme_with_its_value():
    rows = table()
    found = 0
    for path in sorted((ROOT / "dapt").glob("*.py")):
        module = importlib.import_module(f"dapt.{path.stem}")
        for name in CHOICE.findall(path.read_text(encoding="utf-8")):
            key = f"{path.stem}.{name}"
            assert key in rows, f"README dapt choices table lacks {key}"
            assert shown(rows[key]) == getattr(module, name), f"README shows a stale value for {key}"
            found += 1
    assert found >= 15
