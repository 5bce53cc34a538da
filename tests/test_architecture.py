"""Rules of the layout: core is UI-free; pages stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_do_not_touch_the_database_directly():
    """Pages call core services; SQL and duckdb stay in core."""
    for page in (ROOT / "pages").glob("*.py"):
        text = page.read_text()
        assert "duckdb" not in _imports(page), page.name
        assert "SELECT " not in text and "INSERT " not in text and "UPDATE " not in text, page.name
