"""The promoted version of each task: a pointer with its history.

A task is a dataset (what the fine-tunes are for). Promoting a version pushes it onto the
task's history; rolling back returns to the version promoted before the current one (a
stack: rolling back twice goes two versions back). Every change carries a written reason and
is audited. Promotion needs the version's regression gate to pass, or an engineer's override
(the rule lives here, once); a rollback goes to a version that was promoted before, so it
needs no gate. Exports and deployment use `current(...)`.
"""

from __future__ import annotations

import uuid

from core import audit, variants
from core.auth import Action, User, require
from core.errors import InvalidInput, NotFound
from core.store import Store

MIN_REASON = 15


def task_of(store: Store, variant_id: str) -> str | None:
    """The dataset a fine-tuned version was trained on (adapters, merged copies, checkpoints)."""
    variant = variants.get_row(store, variant_id)
    if not variant or variant["job_id"] is None:
        return None
    row = store.row("""SELECT d.dataset FROM runs r JOIN dataset_versions d ON d.version_id = r.dataset_version
                       WHERE r.job_id = ?""", [variant["job_id"]])
    return row["dataset"] if row else None


def history(store: Store, actor: User, task: str | None = None) -> list[dict]:
    """Promotions and rollbacks, newest first (of one task, or all)."""
    require(actor, Action.METRICS_VIEW)
    return store.rows("SELECT * FROM promotions WHERE ? IS NULL OR task = ? ORDER BY seq DESC",
                      [task, task])


def _stack(rows_oldest_first: list[dict]) -> list[str]:
    stack: list[str] = []
    for r in rows_oldest_first:
        if r["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(r["variant_id"])
    return stack


def stacks(store: Store, actor: User) -> dict[str, list[str]]:
    """Per task, the versions promoted and not rolled back, oldest first (the last is current)."""
    out: dict[str, list[dict]] = {}
    for r in reversed(history(store, actor)):
        out.setdefault(r["task"], []).append(r)
    return {task: _stack(rows) for task, rows in out.items()}


def current(store: Store, actor: User, task: str) -> str | None:
    """The promoted version of a task, or None."""
    stack = stacks(store, actor).get(task, [])
    return stack[-1] if stack else None


def promoted(store: Store, actor: User) -> dict[str, dict]:
    """Per task: the current version with the row that made it current."""
    out = {}
    for task, stack in stacks(store, actor).items():
        if stack:
            row = next(r for r in history(store, actor, task) if r["variant_id"] == stack[-1])
            out[task] = {**row, "current": stack[-1], "previous": stack[-2] if len(stack) > 1 else None}
    return out


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput(f"reason: {what} needs a written reason of at least {MIN_REASON} characters (it is kept "
                           "on record with the change).")
    return reason


def promote(store: Store, actor: User, variant: str, reason: str, override: bool = False,
            gate_id: str | None = None, task: str | None = None) -> str:
    """Make `variant` the promoted version of its task. Its gate (the one named, else its newest) must
    pass, or an engineer overrides it; either way with a written reason."""
    from core.regression import runs

    require(actor, Action.PROMOTE)
    if variant != "base" and variants.get_row(store, variant) is None:
        raise NotFound(f"No model version {variant!r} here (a typo?); the Models page lists them.")
    if gate_id:
        gate = store.row("SELECT * FROM regression_gates WHERE gate_id = ? AND variant_id = ?", [gate_id, variant])
        if gate is None:
            raise NotFound(f"No gate {gate_id!r} of {variant}.")
    else:
        gate = runs.latest_gates(store, actor).get(variant)
    verdict = gate["verdict"] if gate else None
    if verdict != "pass" and not override:
        state = f"its regression gate is {verdict}" if verdict else "it has no regression gate yet"
        raise InvalidInput(f"{variant} cannot be promoted: {state}. Run the suite on the Regression page, or "
                           "override with a written reason.")
    reason = _reason(reason, "an override" if verdict != "pass" else "a promotion")
    task = task or task_of(store, variant)
    if not task:
        raise InvalidInput(f"task: {variant} was not trained on a dataset here (a base or a contender); name the "
                           "task (dataset) it should serve.")
    if current(store, actor, task) == variant:
        raise InvalidInput(f"{variant} is already the promoted version of {task}.")
    return _record(store, actor, task, variant, "promote", reason, gate, verdict != "pass")


def rollback(store: Store, actor: User, task: str, reason: str) -> str:
    """Return the task to the version promoted before the current one."""
    require(actor, Action.PROMOTE)
    stack = stacks(store, actor).get(task, [])
    if len(stack) < 2:
        raise InvalidInput(f"{task} has {'no promoted version' if not stack else 'only one promoted version'}: "
                           "there is nothing earlier to roll back to.")
    reason = _reason(reason, "a rollback")
    return _record(store, actor, task, stack[-2], "rollback", reason, None, False, rolled_back=stack[-1])


def _record(store: Store, actor: User, task: str, variant: str, action: str, reason: str, gate: dict | None,
            override: bool, rolled_back: str | None = None) -> str:
    promotion_id = f"promotion-{uuid.uuid4().hex[:12]}"
    detail = (f"{task}: " + (f"rolled back from {rolled_back}" if rolled_back else
                             f"gate {gate['verdict'] if gate else 'none'}" + ("; override" if override else ""))
              + f"; {reason}")
    with store.transaction() as cur:
        cur.execute("""INSERT INTO promotions (promotion_id, variant_id, gate_id, gate_verdict, override, reason,
                       promoted_by, task, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [promotion_id, variant, gate["gate_id"] if gate else None, gate["verdict"] if gate else None,
                     override, reason, actor.username, task, action])
        audit.record(cur, actor, action, variant, detail)
    return promotion_id
