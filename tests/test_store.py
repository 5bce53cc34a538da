"""The store: numbered migrations, all-or-nothing transactions, one owning process."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from core.errors import StoreBusy, StoreError
from core.store import Store
from core.store.migrations import MIGRATIONS


def test_migrations_applied_once_and_recorded(tmp_path):
    store = Store(tmp_path / "t.duckdb")
    recorded = store.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in recorded] == [(v, n) for v, n, _ in MIGRATIONS]
    assert store.schema_version() == MIGRATIONS[-1][0]
    assert store.migrate() == []  # nothing pending the second time
    store.close()
    again = Store(tmp_path / "t.duckdb")  # reopening applies nothing new
    assert again.scalar("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)
    again.close()


def test_set_keys_migration_fills_existing_rows(tmp_path, monkeypatch):
    """Migration 11 on a workspace scored before it: every set and score row gets its set key."""
    import core.store as store_mod

    monkeypatch.setattr(store_mod, "MIGRATIONS", [m for m in MIGRATIONS if m[0] < 11])
    old = Store(tmp_path / "t.duckdb")
    for i, set_id in enumerate(["generate-a", "generate-b"]):
        old.execute("INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, "
                    "requested_path, n_prompts) VALUES (?, 'x', '{}', 'm', '[]', '{}', 'auto', 2)", [set_id])
        old.execute("INSERT INTO metric_scores VALUES (?, 'chrf', 'v', 'base', 0, ?, 'score-1'), "
                    "(?, 'chrf', 'v', 'base', 1, ?, 'score-1')", [set_id, i, set_id, i])
    old.close()
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    new = Store(tmp_path / "t.duckdb")
    keys = {r["set_id"]: r["set_seq"] for r in new.rows("SELECT set_id, set_seq FROM generation_sets")}
    assert sorted(keys.values()) == [1, 2]
    rows = new.rows("SELECT set_id, set_seq FROM metric_scores")
    assert len(rows) == 4 and all(r["set_seq"] == keys[r["set_id"]] for r in rows)
    new.execute("INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, "
                "requested_path, n_prompts) VALUES ('generate-c', 'x', '{}', 'm', '[]', '{}', 'auto', 2)")
    assert new.scalar("SELECT set_seq FROM generation_sets WHERE set_id = 'generate-c'") == 3
    new.close()


def test_failed_migration_leaves_no_trace(tmp_path, monkeypatch):
    import core.store as store_mod

    broken = MIGRATIONS + [(999, "broken", "CREATE TABLE half_done (x INT); SELECT * FROM no_such_table;")]
    monkeypatch.setattr(store_mod, "MIGRATIONS", broken)
    with pytest.raises(StoreError):
        Store(tmp_path / "t.duckdb")
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    versions = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    con.close()
    assert "half_done" not in tables and 999 not in versions
    assert versions == {v for v, _, _ in MIGRATIONS}


def test_transaction_is_all_or_nothing(tmp_path):
    store = Store(tmp_path / "t.duckdb")
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO datasets (name, created_by) VALUES ('a', 'x')")
            raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM datasets") == 0
    with store.transaction() as cur:
        cur.execute("INSERT INTO datasets (name, created_by) VALUES ('a', 'x')")
    assert store.scalar("SELECT count(*) FROM datasets") == 1
    store.close()


def test_second_process_gets_a_clear_message(tmp_path):
    path = tmp_path / "t.duckdb"
    store = Store(path)
    code = ("import sys\nfrom core.store import Store\nfrom core.errors import StoreBusy\n"
            f"try:\n    Store({str(path)!r})\nexcept StoreBusy as exc:\n    print(exc); sys.exit(7)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 7, result.stderr
    assert "in use by another process" in result.stdout and "Traceback" not in result.stderr
    # The owner's data is intact and still writable.
    store.execute("INSERT INTO datasets (name, created_by) VALUES ('still', 'ok')")
    assert store.scalar("SELECT count(*) FROM datasets") == 1
    store.close()


def test_unwritable_workspace_is_a_clear_error(tmp_path):
    from core.config import load_settings
    from core.store import open_store

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = load_settings(env={"TUNEBOARD_WORKSPACE": str(blocker / "ws")})
    with pytest.raises(StoreError, match="workspace"):
        open_store(settings)


def test_insert_rows_matches_row_by_row_inserts(tmp_path):
    """insert_rows (one INSERT ... SELECT over an Arrow table) stores what executemany stores:
    NULLs stay NULL (not NaN), booleans and JSON text survive, OR IGNORE keeps the existing row,
    and an unread result on the cursor (an INSERT just before) does not get in the way."""
    from core.store import insert_rows

    store = Store(tmp_path / "t.duckdb")
    ddl = ("CREATE TABLE {} (k INTEGER PRIMARY KEY, name VARCHAR, score DOUBLE, ok BOOLEAN, detail JSON, "
           "\"position\" INTEGER)")
    rows = [[1, "a", 0.5, True, '{"x": 1}', 3], [2, None, None, False, None, 4], [3, "c", 1, None, "[]", None]]
    columns = ["k", "name", "score", "ok", "detail", "position"]
    with store.transaction() as cur:
        for table in ("by_row", "at_once"):
            cur.execute(ddl.format(table))
            cur.execute(f"INSERT INTO {table} (k, name) VALUES (0, 'kept')")  # its result is never read
        cur.executemany("INSERT OR IGNORE INTO by_row VALUES (?, ?, ?, ?, ?, ?)", [[0, "new", 1, 1, None, 1], *rows])
        assert insert_rows(cur, "at_once", columns, [[0, "new", 1, True, None, 1], *rows], verb="INSERT OR IGNORE") == 4
        assert insert_rows(cur, "at_once", columns, []) == 0
    read = "SELECT * FROM {} ORDER BY k"
    assert store.rows(read.format("at_once")) == store.rows(read.format("by_row"))
    assert store.scalar("SELECT count(*) FROM at_once WHERE score IS NULL") == 2  # kept row and row 2: NULL, not NaN
    assert store.scalar("SELECT name FROM at_once WHERE k = 0") == "kept"
    store.close()
