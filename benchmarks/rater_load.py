"""Raters driving the real server the way the Rate page's browser does, without a browser.

A Streamlit page talks to its server over one websocket (`/_stcore/stream`): the browser sends
`BackMsg.rerun_script` (the page and its widget values, a clicked button as a trigger) and the
server runs the page script and streams `ForwardMsg`s (elements, then `script_finished`).
`RaterClient` speaks exactly that: it connects with the rater's login cookie (a session minted
in core, as a login would), reads the buttons the page drew, and clicks one by sending its
widget id as a trigger, so the server runs the page's own `on_click` callback (`desk.vote`)
and rerun. Nothing here calls core directly: every vote goes through the running app.

Like the browser, a click on a button inside an `st.fragment` names that fragment (the
`fragment_id` its element arrived with), so the server reruns only the fragment, and every
rerun carries the page's script hash (from the `navigation` message). `fragments=False`
leaves the fragment id out: the server then reruns the whole page for each vote (callback,
app entrypoint, navigation, sidebar, page), which is what the Rate page did before its rating
area became a fragment; the load benchmark measures both, with the same code.

`run_raters` runs many of them at once in one asyncio loop and reports what each saw:
acknowledged votes (the "Saved" notice the page shows after `desk.vote` returned
"recorded"), vote-to-next-pair latency (trigger sent -> the rerun that shows the next pair
finished), pairs served twice and errors (an exception element, a warning, a dropped socket).
Used by tests/test_proof_load.py (bounded, in CI) and benchmarks/bench_load_server.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from core.auth import User
from core.sessions import start_session
from core.store import Store
from core.users import get_user

COOKIE = "tuneboard_session"          # dashboard/context.py
VOTE_LABELS = {"1 is better": "1", "2 is better": "2", "Same": "tie", "Both bad": "both_bad"}
SAVED = "Saved:"                      # pages/rate.py's notice after a recorded vote
RUN_TIMEOUT = 120.0                   # one page run; far above any healthy latency


def mint_tokens(store: Store, usernames: list[str], hours: int = 12) -> dict[str, str]:
    """A live login session per account, as the login page would start one."""
    out = {}
    for name in usernames:
        user = get_user(store, name)
        if user is None:
            raise ValueError(f"no account {name!r}")
        out[name] = start_session(store, User(user.username, user.role), hours)
    return out


@dataclass
class PageRun:
    """What one run of the page drew."""
    # label -> (widget id, disabled, the fragment it is in or "")
    buttons: dict[str, tuple[str, bool, str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)                        # markdown, alerts, text, html, code
    alerts: list[tuple[str, str]] = field(default_factory=list)           # (format name, body)
    exceptions: list[str] = field(default_factory=list)
    status: str = ""

    def pair_key(self) -> tuple[str, ...]:
        """What identifies the shown pair to a rater: the texts of the page minus notices."""
        notices = {body for _, body in self.alerts}
        return tuple(t for t in self.texts if t not in notices and "rated" not in t)


class RaterClient:
    """One browser tab of one rater on the Rate page (the rater's default page)."""

    def __init__(self, base_url: str, token: str, fragments: bool = True):
        self.ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.token = token
        self.fragments = fragments
        self.page_script_hash = ""        # the page shown, as the server last said (the browser sends it back)
        self.ws = None

    async def connect(self) -> PageRun:
        self.ws = await websockets.connect(
            self.ws_url, subprotocols=["streamlit"], additional_headers={"Cookie": f"{COOKIE}={self.token}"},
            max_size=None, open_timeout=60, ping_interval=None)
        return await self.rerun()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def rerun(self, trigger: str | None = None, fragment_id: str = "") -> PageRun:
        """A rerun; with `trigger`, a click on that button (in `fragment_id`, if it is in one)."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = ""
        state.page_name = ""
        state.page_script_hash = self.page_script_hash
        if trigger is not None:
            widget = state.widget_states.widgets.add()
            widget.id = trigger
            widget.trigger_value = True
            if fragment_id and self.fragments:
                state.fragment_id = fragment_id
        else:
            state.widget_states.SetInParent()
        await self.ws.send(msg.SerializeToString())
        return await self._collect()

    async def _collect(self) -> PageRun:
        run = PageRun()
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                _read_element(fwd.delta.new_element, run, fwd.delta.fragment_id)
            elif kind == "navigation":
                self.page_script_hash = fwd.navigation.page_script_hash
            elif kind == "new_session" and fwd.new_session.page_script_hash:
                self.page_script_hash = fwd.new_session.page_script_hash
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                if status == "FINISHED_EARLY_FOR_RERUN":
                    continue                       # the callback's rerun follows
                run.status = status
                return run


def _read_element(element, run: PageRun, fragment_id: str = "") -> None:
    kind = element.WhichOneof("type")
    if kind == "button":
        run.buttons[element.button.label] = (element.button.id, element.button.disabled, fragment_id)
    elif kind == "markdown":
        run.texts.append(element.markdown.body)
    elif kind == "alert":
        fmt = type(element.alert).Format.Name(element.alert.format)
        run.alerts.append((fmt, element.alert.body))
        run.texts.append(element.alert.body)
    elif kind in ("text", "html"):
        run.texts.append(getattr(element, kind).body)
    elif kind == "code":
        run.texts.append(element.code.code_text)
    elif kind == "exception":
        run.exceptions.append(f"{element.exception.type}: {element.exception.message}")


@dataclass
class RaterReport:
    name: str
    acknowledged: Counter = field(default_factory=Counter)   # choice -> votes the page confirmed
    latencies: list[float] = field(default_factory=list)      # seconds, vote sent -> next pair drawn
    errors: list[str] = field(default_factory=list)
    served_again: int = 0                                     # a pair shown again after its vote
    finished: bool = False                                    # the page said every pair is rated


async def rate(base_url: str, name: str, token: str, votes: int, think: tuple[float, float], seed: int,
               report: RaterReport, stop: asyncio.Event | None = None, fragments: bool = True) -> RaterReport:
    """Vote `votes` times (or until the task is done or `stop` is set) as the page's user would."""
    rng = random.Random(seed)
    client = RaterClient(base_url, token, fragments=fragments)
    try:
        run = await client.connect()
        seen: set[tuple[str, ...]] = set()
        while sum(report.acknowledged.values()) < votes and not (stop and stop.is_set()):
            if run.exceptions:
                report.errors.append(f"exception on the page: {run.exceptions[0]}")
                return report
            if "1 is better" not in run.buttons:
                report.finished = any("are rated" in t for t in run.texts)
                if not report.finished:
                    report.errors.append(f"no pair on the page: {run.texts[:3]}")
                return report
            key = run.pair_key()
            if key in seen:
                report.served_again += 1
            await asyncio.sleep(rng.uniform(*think))
            label = rng.choice(list(VOTE_LABELS))
            t0 = time.perf_counter()
            widget_id, _, fragment_id = run.buttons[label]
            nxt = await client.rerun(trigger=widget_id, fragment_id=fragment_id)
            report.latencies.append(time.perf_counter() - t0)
            saved = [body for fmt, body in nxt.alerts if body.startswith(SAVED)]
            if saved:
                report.acknowledged[VOTE_LABELS[label]] += 1
                seen.add(key)
            else:
                report.errors.append(f"vote not acknowledged: {[b for _, b in nxt.alerts][:2]}")
            run = nxt
    except (OSError, asyncio.TimeoutError, websockets.ConnectionClosed) as exc:
        report.errors.append(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - the socket may already be gone (a killed server)
            pass
    return report


def run_raters(base_url: str, tokens: dict[str, str], votes: int, think: tuple[float, float],
               seed: int = 0, stop_after: float | None = None,
               reports: list[RaterReport] | None = None, fragments: bool = True) -> list[RaterReport]:
    """Every rater at once, each on its own connection; `stop_after` seconds ends them all.

    `reports` (one per token, in order) may be passed in to watch them fill from another thread.
    `fragments=False`: every vote reruns the whole page (see the module docstring).
    """
    reports = reports if reports is not None else [RaterReport(name) for name in tokens]

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(rate(base_url, name, token, votes, think, seed * 1000 + k, reports[k], stop,
                                          fragments))
                 for k, (name, token) in enumerate(tokens.items())]
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return reports


def acknowledged(reports: list[RaterReport]) -> Counter:
    """(rater, choice) -> votes the page acknowledged (summed over runs of the same rater)."""
    out: Counter = Counter()
    for r in reports:
        out.update({(r.name, choice): n for choice, n in r.acknowledged.items()})
    return out


def stored_votes(database: Path, since: str = "2025-06-01") -> tuple[Counter, int, int]:
    """With the server stopped: votes per (rater, choice) cast after `since` (the seeded ones are
    older), all rows, and distinct (pair set, pair, rater) keys among them."""
    store = Store(database)
    try:
        rows = store.rows("SELECT rater, choice, count(*) AS n FROM votes WHERE created_at > ? GROUP BY ALL",
                          [since])
        total = store.scalar("SELECT count(*) FROM votes")
        distinct = store.scalar("SELECT count(DISTINCT (pair_set_id, pair_id, rater)) FROM votes")
    finally:
        store.close()
    return Counter({(r["rater"], r["choice"]): r["n"] for r in rows}), total, distinct


# ---- a server to drive ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    """Streamlit's own health check answers "ok" once the server takes sessions."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def start_server(root: Path, env: dict[str, str], port: int, log: Path, timeout: float = 90.0) -> subprocess.Popen:
    """`tuneboard serve` on loopback in its own process group; waits for /_stcore/health."""
    tuneboard = Path(sys.executable).with_name("tuneboard")
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(tuneboard), "serve", "--port", str(port)], cwd=root, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"tuneboard serve did not come up (exit {proc.returncode}):\n{tail}")
        time.sleep(0.25)
    return proc


def stop_server(proc: subprocess.Popen, kill: bool = False) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by the server's process group (Linux /proc; 0.0 elsewhere).

    A figure the machine's other work moves less than latency does: what one vote costs the server.
    """
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        if int(fields[2]) == proc.pid:  # process group: start_server gives the server its own session
            total += int(fields[11]) + int(fields[12])
    return total / tick


def server_env(workspace: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_")}
    env.update({"TUNEBOARD_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "TUNEBOARD_ADMIN_PASSWORD": "load-test-admin-pw-1"})
    env.update(extra or {})
    return env
