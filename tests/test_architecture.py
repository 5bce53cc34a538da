"""Rules of the layout: core is UI-free and depends on no edge; the CLI is an edge; pages stay thin;
one module owns model variants."""

from __future__ import annotations

import ast
import re
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
    """Pages (and their parts) call core services; SQL and duckdb stay in core."""
    for page in (ROOT / "pages").rglob("*.py"):
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


# ---- model variants: one owner --------------------------------------------------------
APP_PACKAGES = ("core", "api", "server", "cli", "dashboard", "pages")
VARIANT_WRITE = re.compile(r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+model_variants\b",
                           re.IGNORECASE)


def _app_modules() -> list[Path]:
    return sorted(p for package in APP_PACKAGES if (ROOT / package).is_dir() for p in (ROOT / package).rglob("*.py"))


def test_only_core_variants_writes_model_variants():
    """core/variants.py owns the table: its `register` and `remove` are the only writes, and no other
    module (the schema's migrations aside) names the table in its SQL; the rest call core.variants."""
    writers = sorted(str(p.relative_to(ROOT)) for p in _app_modules() if VARIANT_WRITE.search(p.read_text()))
    assert writers == ["core/variants.py"]
    readers = sorted(str(p.relative_to(ROOT)) for p in _app_modules()
                     if re.search(r"\bmodel_variants\b", p.read_text()))
    assert readers == ["core/store/migrations.py", "core/variants.py"]


def _core_units() -> dict[str, set[str]]:
    """Which top-level parts of core (a folder, or a module beside them) each part imports, lazily or not."""
    graph: dict[str, set[str]] = {}
    core = ROOT / "core"
    for path in core.rglob("*.py"):
        parts = path.relative_to(core).parts
        unit = parts[0] if len(parts) > 1 else path.stem
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + ([f"core.{a.name}" for a in node.names] if node.module == "core" else [])
            else:
                continue
            for name in names:
                bits = name.split(".")
                if bits[0] != "core" or len(bits) < 2 or bits[1] == unit:
                    continue
                if (core / bits[1]).is_dir() or (core / f"{bits[1]}.py").exists():  # not `core.__version__`
                    graph.setdefault(unit, set()).add(bits[1])
    return graph


def test_serving_never_imports_lifecycle():
    """Lifecycle (contenders, pipelines, deploy) builds on serving; serving reaches variants through
    core.variants, never through lifecycle: no import circle between the two folders."""
    graph = _core_units()
    assert "variants" in graph["serving"] and "serving" in graph["lifecycle"]
    assert "lifecycle" not in graph["serving"]


def test_core_variants_sits_below_its_callers():
    """core.variants imports nothing of core but errors (and the store's type), so serving, training,
    regression, lifecycle and webhooks all import it without a circle."""
    assert _core_units()["variants"] <= {"errors", "store"}


# ---- job kinds: one declaration each; one worker skeleton; no import circles ------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _worker_mains() -> dict[str, ast.FunctionDef]:
    """Every core module with a module-level `main(run_dir...)`: the entry of a job's worker."""
    found = {}
    for path in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name == "main" and node.args.args \
                    and node.args.args[0].arg == "run_dir":
                found[_module_name(path)] = node
    return found


def test_every_worker_is_a_declared_job_kind_and_every_kind_has_its_worker():
    """core.jobs.kinds declares each kind once (worker, action, handler, launcher): a worker module that
    is no kind's could never be started, a kind whose worker or handler is gone fails only at run time."""
    import importlib

    from core.jobs.kinds import KINDS

    mains = _worker_mains()
    workers = {kind.worker for kind in KINDS.values()}
    assert set(mains) == workers, (sorted(set(mains) - workers), sorted(workers - set(mains)))
    for name, kind in KINDS.items():
        assert kind.launcher in ("local", "training"), name
        if kind.handler is not None:
            module, _, function = kind.handler.partition(":")
            assert (ROOT / (module.replace(".", "/") + ".py")).exists() or \
                (ROOT / module.replace(".", "/") / "__init__.py").exists(), (name, module)
            assert callable(getattr(importlib.import_module(module), function, None)), (name, kind.handler)


def test_every_worker_runs_in_the_one_skeleton():
    """Each worker's `main` goes through core.jobs.worker.run_worker (SIGTERM, events, failed/cancelled,
    exit code); none installs its own signal handler or writes its own event file."""
    for module, main in _worker_mains().items():
        calls = {n.func.id for n in ast.walk(main) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "run_worker" in calls, module
        text = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert "signal.signal(" not in text and "EventWriter(" not in text, module


def _module_level_graph() -> dict[str, set[str]]:
    """Which core modules each core module imports when it is imported (not inside a function). An
    import of a.b.c also runs a and a.b, except where they are the importer's own packages."""
    modules = {_module_name(p): p for p in (ROOT / "core").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()

        def visit(node: ast.AST) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    continue
                if isinstance(child, ast.Import):
                    imported = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                    imported = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
                else:
                    visit(child)
                    continue
                for full in imported:
                    bits = full.split(".")
                    for i in range(1, len(bits) + 1):
                        dep = ".".join(bits[:i])
                        if dep in modules and dep != name and not name.startswith(dep + "."):
                            deps.add(dep)

        visit(ast.parse(path.read_text()))
        graph[name] = deps
    return graph


def test_core_has_no_import_circles():
    """No two core modules import each other on import, directly or around a loop (a function-level
    import is how a module reaches one above it). The job kinds' table names its handlers as strings
    for this reason: core.jobs imports none of the modules that own the kinds."""
    graph = _module_level_graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    circles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                walk(dep, path + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert circles == []
    owners = {"core.training", "core.serving", "core.metrics", "core.regression", "core.datasets", "core.lifecycle"}
    jobs = {d for m, deps in graph.items() if m == "core.jobs" or m.startswith("core.jobs.") for d in deps}
    assert not {d for d in jobs if any(d == o or d.startswith(o + ".") for o in owners)}, sorted(jobs)


# ---- one home for each rule ------------------------------------------------------------
def test_the_dashboard_folder_holds_only_the_entrypoint_context_and_shared_widgets():
    """A part of one page lives beside its page (pages/parts/), not in dashboard/."""
    assert {p.name for p in (ROOT / "dashboard").glob("*.py")} == {"__init__.py", "app.py", "context.py",
                                                                  "widgets.py"}
    parts = {p.stem for p in (ROOT / "pages" / "parts").glob("*.py")} - {"__init__"}
    used = set()
    for page in (ROOT / "pages").glob("*.py"):
        for node in ast.walk(ast.parse(page.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pages.parts":
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pages.parts."):
                used.add(node.module.rsplit(".", 1)[1])
    assert parts == used, parts ^ used  # every part serves a page, and nothing else imports it


def test_field_help_and_ranges_are_read_through_core_fields():
    """Help texts and ranges are declared with core.fields.setting and read with core.fields.about
    (forms: dashboard.widgets.described_input; API: api.fields); nobody reads dataclass metadata or
    keeps a HELP table of their own."""
    offenders = []
    for path in _app_modules():
        if path == ROOT / "core" / "fields.py":
            continue
        text = path.read_text()
        if ".metadata[" in text or re.search(r"\bHELP\s*=\s*\{", text) or re.search(r"\w\.HELP\[", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_one_merge_and_one_dtype_rule():
    """Merging an adapter and choosing the compute dtype happen in core/weights.py only."""
    offenders = [str(p.relative_to(ROOT)) for p in _app_modules() if p != ROOT / "core" / "weights.py"
                 and re.search(r"merge_and_unload|torch\.bfloat16|is_bf16_supported", p.read_text())]
    assert offenders == []


# Size guides: a page over PAGE_LINES or a module over MODULE_LINES is worth splitting; reported, not failed.
PAGE_LINES, MODULE_LINES = 150, 600


def test_size_guides():
    import warnings

    long_pages = {str(p.relative_to(ROOT)): n for p in (ROOT / "pages").glob("*.py")
                  if (n := len(p.read_text().splitlines())) > PAGE_LINES * 1.05}
    long_modules = {str(p.relative_to(ROOT)): n for p in _app_modules()
                    if (n := len(p.read_text().splitlines())) > MODULE_LINES}
    for what, found, limit in (("pages", long_pages, PAGE_LINES), ("modules", long_modules, MODULE_LINES)):
        if found:
            warnings.warn(f"{what} over the size guide of {limit} lines: "
                          + ", ".join(f"{k} ({v})" for k, v in sorted(found.items(), key=lambda kv: -kv[1])))
    assert not long_pages, long_pages  # pages have room to move parts out: kept at the guide


def test_every_package_the_project_imports_is_declared():
    """A package imported by the project is a dependency in pyproject.toml (or an extra's), not one that
    happens to come with another: a fresh install anywhere must have it."""
    import importlib.metadata as md
    import sys
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ;~!]", d)[0].lower().replace("_", "-")
                for d in project["dependencies"] + [x for v in project["optional-dependencies"].values() for x in v]}
    ours = set(APP_PACKAGES) | {"tests", "benchmarks", "__future__"}
    distributions = md.packages_distributions()
    undeclared = {}
    for path in _app_modules():
        for name in _imports(path) - set(sys.stdlib_module_names) - ours:
            provided_by = {d.lower().replace("_", "-") for d in distributions.get(name, [])}
            if not provided_by & declared:
                undeclared.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert undeclared == {}
