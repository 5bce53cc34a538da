"""Jobs: records in the store, worker processes, and exactly-once ingestion of their events.

The owner of the database (dashboard server or one CLI command) creates a job row and a
run folder holding `config.json`, then a launcher starts the worker. The worker never opens
the database: it appends to `events.jsonl` (core.jobs.events). The owner reads new complete
lines from the byte offset it last committed and, in one transaction, inserts the events
and advances the offset and `last_seq`. An owner that restarts picks up where the committed
offset says; a line whose seq is not above `last_seq` is never counted again, and a line that
is not valid JSON is recorded in `ingest_problems` and skipped.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pyarrow as pa

from core import audit
from core.auth import Action, User, require
from core.errors import JobError, NotFound, StoreError
from core.jobs.events import CANCEL_FILE, CONFIG_FILE, EVENTS_FILE, LOG_FILE, TERMINAL, cancel_requested
from core.jobs.kinds import KINDS, action_for
from core.jobs.launchers import Launcher, LocalLauncher, WorkerLost
from core.store import Store

ACTIVE = ("queued", "running")

# Every kind of job (its worker, action, event handler and launcher) is declared in core.jobs.kinds.


def _require_some_job_action(actor: User) -> None:
    """Before a job is looked up by id: someone who may start no kind of job (a rater) is refused
    without learning anything, not even whether the id exists; the job's own kind is checked next."""
    if actor is None or not any(actor.may(a) for a in (Action.JOBS_RUN, *(k.action for k in KINDS.values()))):
        require(actor, Action.JOBS_RUN)


class HandlerError(Exception):
    """A kind's event handler failed on the event at `event_index` of a batch."""

    def __init__(self, event_index: int):
        super().__init__(f"event handler failed on event {event_index}")
        self.event_index = event_index


@dataclass
class IngestResult:
    events: int = 0
    problems: int = 0


def _audit_detail(kind: str, config: dict) -> dict:
    """What the audit trail keeps of a job's config: its short scalar fields (never prompts or rows)."""
    fields = config.get("train", config) if kind == "train" else config
    kept = {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool)) and len(str(v)) <= 200}
    return dict(list(kept.items())[:12])


def _new_job_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


# One ingest lock per database, shared by every Jobs over it: inside the server a command's own
# Jobs (the demo's, say) and the monitor's read the same event files.
_INGEST_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INGEST_LOCKS_GUARD = threading.Lock()


def _ingest_lock(store: Store) -> threading.Lock:
    with _INGEST_LOCKS_GUARD:
        return _INGEST_LOCKS.setdefault(store, threading.Lock())


class Jobs:
    """Job service of the owning process."""

    def __init__(self, store: Store, runs_dir: Path, launcher: Launcher | None = None,
                 launchers: dict[str, Launcher] | None = None, cancel_grace_s: float = 300.0):
        self.store = store
        # A cancelled worker that has not stopped after this many seconds is ended with all it started.
        self.cancel_grace_s = cancel_grace_s
        # Jobs that ended by their worker's own word in this process: job id -> (kind, pid, when). Once
        # the worker has exited, whatever it started and left running is ended (see `_reap`).
        self._ended: dict[str, tuple[str, int | None, float]] = {}
        self.runs_dir = Path(runs_dir)
        self.default_launcher = launcher or LocalLauncher()
        self.launchers = dict(launchers or {})  # per job kind, e.g. {"train": accelerate}
        self._ingest_lock = _ingest_lock(store)

    def launcher_for(self, kind: str) -> Launcher:
        return self.launchers.get(kind, self.default_launcher)

    @property
    def launcher(self) -> Launcher:
        return self.default_launcher

    # ---- lifecycle -----------------------------------------------------------------
    def submit(self, actor: User, kind: str, config: dict,
               prepare: Callable[[Path], None] | None = None,
               record: Callable[[Any, str], None] | None = None) -> str:
        """Create the job and its run folder (`prepare` may add files to it), then start the worker.

        `record(cursor, job_id)` writes the kind's own rows in the same transaction as the job
        row, before the worker starts: its first events always find them."""
        require(actor, action_for(kind))
        if kind not in KINDS:
            raise JobError(f"Unknown job kind {kind!r}; known kinds: {', '.join(KINDS)}.")
        job_id = _new_job_id(kind)
        run_dir = self.runs_dir / job_id
        try:
            run_dir.mkdir(parents=True)
            (run_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
            if prepare is not None:
                prepare(run_dir)
        except OSError as exc:  # a full or read-only disk: nothing of the job is left behind
            shutil.rmtree(run_dir, ignore_errors=True)
            why = "is full" if exc.errno == errno.ENOSPC else f"cannot be written ({exc.strerror or exc})"
            raise StoreError(f"The disk holding {self.runs_dir} {why}: the {kind} job was not started and nothing "
                             "was written. Free space (or fix the folder's permissions) and retry.") from None
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES (?, ?, 'queued', ?, ?, ?)",
                [job_id, kind, str(run_dir), json.dumps(config, sort_keys=True), actor.username])
            if record is not None:
                record(cur, job_id)
            audit.record(cur, actor, f"{kind}.start", job_id, _audit_detail(kind, config))
        self._launch(job_id, kind, run_dir)
        return job_id

    def _launch(self, job_id: str, kind: str, run_dir: Path) -> None:
        try:
            pid = self.launcher_for(kind).start(job_id, KINDS[kind].worker, run_dir)
        except OSError as exc:
            self.store.execute("UPDATE jobs SET status = 'failed', error = ?, finished_at = now() WHERE job_id = ?",
                               [f"could not start the worker: {exc}", job_id])
            raise JobError(f"Could not start the {kind} worker: {exc}") from None
        self.store.execute("UPDATE jobs SET pid = ?, status = 'running', started_at = coalesce(started_at, now()), "
                           "finished_at = NULL, error = NULL, lost = FALSE WHERE job_id = ?", [pid, job_id])

    def cancel(self, actor: User, job_id: str) -> None:
        """Graceful: the worker sees the request, saves what it must and says 'cancelled'."""
        _require_some_job_action(actor)
        job = self.get(job_id)
        require(actor, action_for(job["kind"]))
        if job["status"] not in ACTIVE:
            raise JobError(f"Job {job_id} is {job['status']}; only a queued or running job can be cancelled.")
        Path(job["run_dir"], CANCEL_FILE).touch()
        with self.store.transaction() as cur:
            audit.record(cur, actor, f"{job['kind']}.cancel", job_id)
        self.launcher_for(job["kind"]).stop(job_id, job["pid"])

    def resume(self, actor: User, job_id: str) -> None:
        """Start the same worker again in the same run folder; it continues from its state."""
        _require_some_job_action(actor)
        job = self.get(job_id)
        require(actor, action_for(job["kind"]))
        if job["status"] in ACTIVE:
            raise JobError(f"Job {job_id} is still {job['status']}.")
        if job["status"] == "succeeded":
            raise JobError(f"Job {job_id} already succeeded; there is nothing to resume.")
        # A worker that has just reported 'cancelled' may still be exiting: give it a moment.
        launcher, deadline = self.launcher_for(job["kind"]), time.monotonic() + 20
        while launcher.alive(job_id, job["pid"]):
            if time.monotonic() > deadline:
                raise JobError(f"Job {job_id}'s worker (pid {job['pid']}) is still running; wait for it to stop.")
            time.sleep(0.1)
        launcher.end(job_id, job["pid"])  # nothing of the last worker may run beside the new one
        Path(job["run_dir"], CANCEL_FILE).unlink(missing_ok=True)
        with self.store.transaction() as cur:
            audit.record(cur, actor, f"{job['kind']}.resume", job_id, {"was": job["status"]})
        self._launch(job_id, job["kind"], Path(job["run_dir"]))

    # ---- reading -------------------------------------------------------------------
    def get(self, job_id: str) -> dict:
        job = self.store.row("SELECT * FROM jobs WHERE job_id = ?", [job_id])
        if job is None:
            raise NotFound(f"No job {job_id!r}.")
        return job

    def list(self, actor: User, kind: str | None = None) -> list[dict]:
        """Jobs for a person to read (leads and engineers)."""
        require(actor, Action.JOBS_VIEW)
        if kind:
            return self.store.rows("SELECT * FROM jobs WHERE kind = ? ORDER BY created_at DESC", [kind])
        return self.store.rows("SELECT * FROM jobs ORDER BY created_at DESC")

    def view(self, actor: User, job_id: str) -> dict:
        """A job's record for a person to read (leads and engineers)."""
        require(actor, Action.JOBS_VIEW)
        return self.get(job_id)

    def history(self, actor: User, job_id: str, type: str | None = None, after: int = 0) -> list[dict]:
        """A job's events for a person to read (leads and engineers); `after` a seq."""
        require(actor, Action.JOBS_VIEW)
        return self.events(job_id, type, after)

    def progress_of(self, job_id: str) -> tuple[dict | None, dict | None]:
        """A job's latest progress (stage, done, total) and its `finished` event (None until there is one):
        what a kind's status shows while the job runs and once it is done."""
        progress = finished = None
        for event in self.events(job_id):
            if event["type"] == "progress":
                progress = {k: event.get(k) for k in ("stage", "done", "total")}
            elif event["type"] == "finished":
                finished = event
        return progress, finished

    def events(self, job_id: str, type: str | None = None, after: int = 0) -> list[dict]:
        """The owner's own read of a job's events (no role check: not for pages); `after` a seq."""
        sql = "SELECT seq, emitted_at, type, payload FROM job_events WHERE job_id = ? AND seq > ?"
        params: list = [job_id, after]
        if type:
            sql += " AND type = ?"
            params.append(type)
        rows = self.store.rows(sql + " ORDER BY seq", params)
        return [{"seq": r["seq"], "at": r["emitted_at"], "type": r["type"], **json.loads(r["payload"])} for r in rows]

    def log_tail(self, job_id: str, lines: int = 30) -> str:
        path = Path(self.get(job_id)["run_dir"], LOG_FILE)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ---- ingestion -----------------------------------------------------------------
    def ingest(self, job_id: str) -> IngestResult:
        """Read the worker's new complete event lines and commit them exactly once."""
        with self._ingest_lock:
            job = self.get(job_id)
            path = Path(job["run_dir"], EVENTS_FILE)
            if not path.exists():
                return IngestResult()
            offset = int(job["ingest_offset"])
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            end = data.rfind(b"\n")
            if end < 0:
                return IngestResult()  # only a partial line so far: wait for the rest
            chunk = data[: end + 1]
            last_seq = int(job["last_seq"])
            events, problems, pos, ends = [], [], offset, []
            for raw in chunk.split(b"\n")[:-1]:
                line_at = pos
                pos += len(raw) + 1
                try:
                    record = json.loads(raw)
                    seq = int(record.pop("seq"))
                    at = float(record.pop("at"))
                    type_ = str(record.pop("type"))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    problems.append((job_id, line_at, f"unreadable event line at byte {line_at}: {exc!s:.200}"))
                    continue
                if seq <= last_seq:
                    continue  # already ingested (a rewritten or replayed line)
                last_seq = seq
                events.append((job_id, seq, at, type_, json.dumps(record, default=str)))
                ends.append((line_at, pos))
            try:
                return self._commit(job, events, problems, offset + len(chunk), last_seq)
            except HandlerError as exc:  # an event its kind's handler cannot take (the transaction rolled back)
                bad = exc.event_index
                # Commit what came before it, record it as a problem and step past it; the rest of the
                # file is read on the next pass. The owner keeps ingesting this job and every other.
                line_at, line_end = ends[bad]
                problems = [p for p in problems if p[1] < line_at]
                problems.append((job_id, line_at, f"event seq {events[bad][1]} ({events[bad][3]}) at byte {line_at} "
                                                  f"was skipped: {type(exc.__cause__).__name__}: "
                                                  f"{str(exc.__cause__)[:200]}"))
                last = events[bad][1]
                return self._commit(job, events[:bad], problems, line_end, last)

    def _commit(self, job: dict, events: list[tuple], problems: list[tuple], new_offset: int,
                last_seq: int) -> IngestResult:
        """One transaction: the events, what their kind's handler makes of them, the problems, the offset."""
        job_id = job["job_id"]
        status = job["status"]
        error = job["error"]
        lost = bool(job.get("lost")) and status == "failed"
        for _, _, _, type_, payload in events:
            if lost:
                if type_ in TERMINAL:  # the run stays failed: the late word is noted beside the reason
                    error = f"{error}\nLater its worker reported '{type_}' (its events are shown)."
            elif type_ == "started" and status in ACTIVE:
                status = "running"
            elif type_ in TERMINAL:
                status = TERMINAL[type_]
                if type_ == "failed":
                    error = json.loads(payload).get("error", "worker reported failure")
        with self.store.transaction() as cur:
            if events:
                batch = pa.table(list(zip(*events)), names=["job_id", "seq", "emitted_at", "type", "payload"])
                cur.register("event_batch", batch)
                cur.execute("INSERT OR IGNORE INTO job_events SELECT * FROM event_batch")
                cur.unregister("event_batch")
            kind = KINDS.get(job["kind"])
            handler = kind.event_handler() if kind else None
            if handler is not None:
                for i, (_, seq, at, type_, payload) in enumerate(events):
                    if lost and type_ in TERMINAL:
                        continue  # what a finished run would register (its model) does not come of a failed one
                    try:
                        handler(cur, job, type_, {"seq": seq, "at": at, **json.loads(payload)})
                    except Exception as exc:
                        raise HandlerError(i) from exc
            if problems:
                cur.executemany("INSERT OR IGNORE INTO ingest_problems (job_id, byte_offset, message) "
                                "VALUES (?, ?, ?)", problems)
            finished = status in TERMINAL.values() and job["status"] not in TERMINAL.values()
            cur.execute("UPDATE jobs SET ingest_offset = ?, last_seq = ?, status = ?, error = ?, "
                        "finished_at = CASE WHEN ? THEN now() ELSE finished_at END WHERE job_id = ?",
                        [new_offset, last_seq, status, error, finished, job_id])
        if finished:
            self._ended[job_id] = (job["kind"], job["pid"], time.monotonic())
        return IngestResult(len(events), len(problems))

    def ingest_problems(self, job_id: str) -> list[dict]:
        return self.store.rows("SELECT byte_offset, message, created_at FROM ingest_problems WHERE job_id = ? "
                               "ORDER BY byte_offset", [job_id])

    def skipped_note(self, job_id: str) -> str | None:
        """What the pages and the CLI say when lines of a job's event file could not be taken in."""
        problems = self.ingest_problems(job_id)
        if not problems:
            return None
        first = problems[0]
        return (f"{len(problems)} line(s) of this job's event file ({EVENTS_FILE} in its run folder) could not be "
                f"read and were skipped; everything else was taken in. First, at byte {first['byte_offset']}: "
                f"{first['message']}")

    def reconcile(self) -> None:
        """Ingest every active job; a worker that died without a final event is marked failed."""
        # A job whose pid is not recorded yet is being launched right now: leave it alone.
        for job in self.store.rows("SELECT job_id, kind, pid, run_dir FROM jobs WHERE status IN ('queued', 'running') "
                                   "AND pid IS NOT NULL"):
            self.ingest(job["job_id"])
            launcher = self.launcher_for(job["kind"])
            try:
                alive, lost = launcher.alive(job["job_id"], job["pid"]), None
            except WorkerLost as exc:
                alive, lost = False, str(exc)
            if alive and not self._past_cancel_grace(job["run_dir"]):
                continue
            # Gone (killed, crashed) or deaf to its cancel: end whatever it started that lives on (an
            # engine reparented to init would hold its cores, memory and GPU for ever).
            launcher.end(job["job_id"], job["pid"])
            self.ingest(job["job_id"])  # lines written just before exit
            current = self.get(job["job_id"])
            if current["status"] in ACTIVE and cancel_requested(current["run_dir"]):
                # Stopped before it could say so (e.g. still starting up): it was cancelled, not broken.
                self.store.execute("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE job_id = ? "
                                   "AND pid = ? AND status IN ('queued', 'running')", [job["job_id"], job["pid"]])
            elif current["status"] in ACTIVE:
                tail = self.log_tail(job["job_id"], 20) or "(the worker wrote no log)"
                error = lost or f"the worker exited without finishing.\n{tail}"
                # Only if it is still the same worker (a resume may have started a new one meanwhile).
                self.store.execute("UPDATE jobs SET status = 'failed', finished_at = now(), error = ?, lost = ? "
                                   "WHERE job_id = ? AND pid = ? AND status IN ('queued', 'running')",
                                   [error, lost is not None, job["job_id"], job["pid"]])
        # A lost worker may still run (a cluster the owner cannot reach): take in what it writes.
        for job in self.store.rows("SELECT job_id FROM jobs WHERE lost AND status = 'failed' "
                                   "AND finished_at > now() - INTERVAL 7 DAY"):
            self.ingest(job["job_id"])
        self._reap()

    def _reap(self) -> None:
        """Jobs that ended by their worker's word: once the worker has exited (or has not, `cancel_grace_s`
        after its last word), end what it left running. A resumed job's new worker is not touched."""
        for job_id, (kind, pid, when) in list(self._ended.items()):
            job = self.store.row("SELECT status, pid FROM jobs WHERE job_id = ?", [job_id])
            if job is None or job["status"] in ACTIVE or job["pid"] != pid:
                self._ended.pop(job_id, None)
                continue
            launcher = self.launcher_for(kind)
            if launcher.alive(job_id, pid) and time.monotonic() - when <= self.cancel_grace_s:
                continue
            launcher.end(job_id, pid)
            self._ended.pop(job_id, None)

    def _past_cancel_grace(self, run_dir: str) -> bool:
        """A cancel was asked for more than `cancel_grace_s` seconds ago (the cancel file's age)."""
        try:
            asked = Path(run_dir, CANCEL_FILE).stat().st_mtime
        except OSError:
            return False
        return time.time() - asked > self.cancel_grace_s

    def look(self, job_id: str, after: int = 0, type: str | None = None) -> tuple[dict, list[dict]]:
        """A job's row, then its events after seq `after` (the row first: once it has ended, every event is in)."""
        job = self.get(job_id)
        return job, self.events(job_id, type, after)

    def follow(self, job_id: str, on_progress: Callable[[dict, list[dict]], Any] | None = None,
               timeout: float = float("inf"), poll: float = 1.0, after: int = 0, type: str | None = None,
               drive: bool = True) -> dict:
        """Follow a job until it ends or `timeout` seconds pass; returns its row (its status says which).

        After each pass `on_progress(job, events)` gets the job's row and its events (of `type`, if
        given) since the last pass. With `drive` each pass first ingests what the workers wrote: for a
        process that owns the store and has no monitor (the demo, a command, a test); inside the
        server the monitor ingests and a follower only reads."""
        last = after

        def one_pass() -> dict:
            nonlocal last
            if drive:
                self.reconcile()
            job, events = self.look(job_id, last, type)
            if events:
                last = events[-1]["seq"]
            if on_progress is not None:
                on_progress(job, events)
            return job

        job: dict = {}
        for job in passes(one_pass, lambda j: j["status"] not in ACTIVE, timeout, poll):
            pass
        return job

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.1) -> dict:
        """Ingest until the job ends and return its row; a JobError after `timeout` seconds."""
        job = self.follow(job_id, timeout=timeout, poll=poll)
        if job["status"] in ACTIVE:
            raise JobError(f"Job {job_id} did not finish within {timeout:.0f} s.")
        return job


_Seen = TypeVar("_Seen")


def passes(look: Callable[[], _Seen], ended: Callable[[_Seen], bool], timeout: float,
           poll: float) -> Iterator[_Seen]:
    """The one polling loop of core: yield `look()` every `poll` seconds until `ended` says so or
    `timeout` seconds have passed (the last look is yielded either way). `Jobs.follow` follows a job
    with it, `core.lifecycle.pipelines.follow` a pipeline."""
    deadline = time.monotonic() + timeout
    while True:
        seen = look()
        yield seen
        if ended(seen) or time.monotonic() >= deadline:
            return
        time.sleep(poll)


class JobMonitor:
    """A daemon thread in the owner that keeps ingesting events while the app serves."""

    def __init__(self, jobs: Jobs, interval: float = 1.0, after: Callable[[], Any] | None = None):
        # `after` runs after each ingest pass: the owner's follow-ups (e.g. advancing checkpoint sweeps).
        self.jobs, self.interval, self.after = jobs, interval, after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuneboard-job-monitor", daemon=True)
        self.last_error: str | None = None       # the newest failed pass's message (None once one succeeds)
        self.last_error_at: float | None = None  # when it failed (epoch seconds); kept after a success
        self.last_tick: float | None = None      # when a pass last succeeded

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "JobMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.jobs.reconcile()
                if self.after is not None:
                    self.after()
                self.last_error, self.last_tick = None, time.time()
            except Exception as exc:  # noqa: BLE001 - logged, retried next pass, shown on Home and in health
                if str(exc) != self.last_error:
                    logging.getLogger("tuneboard").exception("the owner's follow-up pass failed (retried every "
                                                             "%.0f s)", self.interval)
                self.last_error, self.last_error_at = f"{type(exc).__name__}: {exc}", time.time()
            self._stop.wait(self.interval)
