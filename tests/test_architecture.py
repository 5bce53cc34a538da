"""Rules of the layout: core is UI-free and depends on no edge; the CLI is an edge; pages stay thin."""

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


def _module_level_imports(path: Path) -> set[str]:
    """Like `_imports`, but only what runs on import: not inside a function (a command's lazy import)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                names.update(a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names.add(child.module.split(".")[0])
            visit(child)

    visit(ast.parse(path.read_text()))
    return names


def test_core_never_imports_streamlit():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


# Command-line, UI and web libraries, and the edge packages: core is what they are built on, never the reverse.
EDGES = {"typer", "rich", "click", "cli", "dashboard", "pages", "server", "api", "fastapi", "starlette", "uvicorn"}


def test_core_never_imports_an_edge():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & EDGES) for p in (ROOT / "core").rglob("*.py")
                 if _imports(p) & EDGES}
    assert offenders == {}


def test_cli_is_an_edge_without_ui_imports_or_circles():
    """The CLI never loads the UI on import (`serve` imports what it starts inside the command), holds
    no SQL, and its group modules import from `cli` only the shared `cli.context` (no import circle)."""
    modules = sorted((ROOT / "cli").rglob("*.py"))
    assert modules, "the cli package is missing"
    for path in modules:
        name = str(path.relative_to(ROOT))
        assert not _module_level_imports(path) & {"streamlit", "dashboard", "pages"}, name
        assert "pages" not in _imports(path), name
        assert "duckdb" not in _imports(path), name
        text = path.read_text()
        assert "SELECT " not in text and "INSERT " not in text and "UPDATE " not in text, name
        if path.name in ("__init__.py", "__main__.py", "context.py"):
            continue
        from_cli = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cli":
                from_cli.add(node.module)
            elif isinstance(node, ast.ImportFrom) and node.level:
                from_cli.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                from_cli |= {a.name for a in node.names if a.name.split(".")[0] == "cli"}
        assert from_cli <= {"cli.context"}, (name, from_cli)
    # What the groups share depends on none of them: at most on cli.api (the command's connection to
    # the API), which imports nothing of cli.
    used = set()
    for node in ast.walk(ast.parse((ROOT / "cli" / "context.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cli":
            used |= {f"{node.module}.{a.name}" if node.module == "cli" else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names if a.name.split(".")[0] == "cli"}
    assert used <= {"cli.api"}, used
    assert "cli" not in _imports(ROOT / "cli" / "api.py")


def test_pages_do_not_touch_the_database_directly():
    """Pages call core services; SQL and duckdb stay in core."""
    for page in (ROOT / "pages").glob("*.py"):
        text = page.read_text()
        assert "duckdb" not in _imports(page), page.name
        assert "SELECT " not in text and "INSERT " not in text and "UPDATE " not in text, page.name


def test_commands_speak_the_api():
    """Command modules act through the HTTP API (cli.context.api), never as a user on the database: no
    CLI_USER, no store or owner of their own. cli/workspace.py (`serve`, `init`, `demo`) makes the
    workspace itself and is the one exception."""
    for path in sorted((ROOT / "cli").glob("*.py")):
        if path.name in ("__init__.py", "__main__.py", "context.py", "api.py", "workspace.py"):
            continue
        text = path.read_text()
        for word in ("CLI_USER", "open_store", ".store", "Owner", "core.auth import Action"):
            assert word not in text, (path.name, word)
