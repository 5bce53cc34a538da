"""Rating through the API (raters only): the calls a custom rating UI needs, exactly as blind as
the Rate page.

A response carries what a `PairView` carries (the conversation, two anonymous responses, the
progress) and nothing else: no variant, model, run, path, side or pair id. The desk's own ticket
is a pair id, so it never leaves the server: a client gets an opaque random handle instead,
mapped here to (pair set, desk ticket) in a book per rater. A handle is good only for the rater
it was given to and only in its pair set; the books are bounded (the oldest handles go first)
and handles expire, and a vote with a handle the book does not hold is refused with 409 and a
request to fetch the next pair. A handle stays good after its vote, so a resent vote gets the
desk's receipt ("duplicate", counted once) rather than an error.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections import OrderedDict
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from api.auth import caller, the_owner
from api.errors import ApiError
from core.auth import Action, User, require
from core.errors import NotFound
from core.owner import Owner
from core.review.desk import CHOICES, MAX_RATIONALE, RatingDesk

router = APIRouter(prefix="/rating", tags=["rating"])

STALE = ("This ticket is unknown or has expired (tickets belong to one rater and one task). "
         "GET /rating/{pair_set_id}/next for the pair to rate now.")


class TicketBook:
    """Opaque handles of the pairs served to raters: handle -> (pair set, desk ticket), per rater.

    Bounded: at most `per_rater` handles per rater and `raters` raters (least recently used go
    first), each handle good for `ttl` seconds after it was last served. Serving the same pair
    again gives the same handle while it is held.
    """

    def __init__(self, per_rater: int = 128, raters: int = 1_000, ttl: float = 12 * 3600.0,
                 clock=time.monotonic):
        self.per_rater, self.raters, self.ttl, self.clock = per_rater, raters, ttl, clock
        self._lock = threading.Lock()
        # rater -> handle -> (pair set, desk ticket, served at); rater -> (pair set, desk ticket) -> handle
        self._handles: OrderedDict[str, OrderedDict[str, tuple[str, int, float]]] = OrderedDict()
        self._by_pair: dict[str, dict[tuple[str, int], str]] = {}

    def issue(self, rater: str, pair_set_id: str, ticket: int) -> str:
        now = self.clock()
        with self._lock:
            handles = self._handles.get(rater)
            if handles is None:
                handles = self._handles[rater] = OrderedDict()
                self._by_pair[rater] = {}
                while len(self._handles) > self.raters:
                    gone, _ = self._handles.popitem(last=False)
                    self._by_pair.pop(gone, None)
            self._handles.move_to_end(rater)
            by_pair = self._by_pair[rater]
            handle = by_pair.get((pair_set_id, ticket))
            if handle is None:
                handle = secrets.token_urlsafe(24)
                by_pair[(pair_set_id, ticket)] = handle
            handles[handle] = (pair_set_id, ticket, now)
            handles.move_to_end(handle)
            while len(handles) > self.per_rater:
                _, (ps, t, _) = handles.popitem(last=False)
                by_pair.pop((ps, t), None)
            return handle

    def resolve(self, rater: str, pair_set_id: str, handle: str) -> int | None:
        """The desk ticket behind `handle` for this rater in this pair set, if it holds one."""
        with self._lock:
            found = self._handles.get(rater, {}).get(handle)
            if found is None or found[0] != pair_set_id or self.clock() - found[2] > self.ttl:
                return None
            return found[1]


_books: "weakref.WeakKeyDictionary[RatingDesk, TicketBook]" = weakref.WeakKeyDictionary()
_books_lock = threading.Lock()


def book_of(desk: RatingDesk) -> TicketBook:
    """The ticket book of one desk (one per owner: a handle never outlives the database it names)."""
    with _books_lock:
        book = _books.get(desk)
        if book is None:
            book = _books[desk] = TicketBook()
        return book


# ---- bodies and answers ----------------------------------------------------------------------
class Progress(BaseModel):
    done: int = Field(description="Pairs of this task you have voted on.")
    total: int = Field(description="Pairs of this task assigned to you.")
    skipped: int = Field(0, description="Pairs you skipped and have not voted on yet.")


class Task(BaseModel):
    pair_set_id: str = Field(description="The task's id, for the calls below.")
    name: str
    instructions: str = Field(description="What to judge; shown above every pair.")
    progress: Progress


class Message(BaseModel):
    role: str = Field(description="system, user or assistant (an earlier turn of the conversation).")
    content: str


class NextPair(BaseModel):
    finished: bool = Field(description="True when every pair of the task is voted (no pair follows).")
    ticket: str | None = Field(None, description="Opaque handle of this pair: send it back with the vote or skip.")
    conversation: list[Message] = Field(default_factory=list, description="The conversation up to the responses.")
    response_1: str | None = None
    response_2: str | None = None
    returning: bool = Field(False, description="A pair you skipped earlier, offered again.")
    progress: Progress


class Vote(BaseModel):
    ticket: str = Field(max_length=200, description="The ticket of the pair, from GET .../next.")
    choice: Literal["1", "2", "tie", "both_bad"] = Field(
        description="; ".join(f"{k}: {v}" for k, v in CHOICES.items()))
    rationale: str = Field("", max_length=MAX_RATIONALE, description="Why, in a few words (optional).")

    @field_validator("choice", mode="before")
    @classmethod
    def _number_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Skip(BaseModel):
    ticket: str = Field(max_length=200, description="The ticket of the pair to put at the back of your queue.")


class Receipt(BaseModel):
    status: Literal["recorded", "duplicate", "ignored", "skipped", "undone", "nothing_to_undo"] = Field(
        description="recorded: counted; duplicate: already counted once, not again; ignored: too soon after the "
                    "pair appeared (taken for a double click), not counted.")
    message: str = ""


# ---- routes ----------------------------------------------------------------------------------
def _ticket(owner: Owner, user: User, pair_set_id: str, handle: str) -> int:
    ticket = book_of(owner.desk).resolve(user.username, pair_set_id, handle)
    if ticket is None:
        # Only raters hold handles: anyone else hears the desk's own answer (403), not "stale".
        require(user, Action.REVIEW_RATE)
        raise ApiError(409, "stale_ticket", STALE)
    return ticket


def _task(owner: Owner, user: User, pair_set_id: str) -> dict:
    for task in owner.desk.tasks(user):
        if task["pair_set_id"] == pair_set_id:
            return task
    raise NotFound(f"You have no rating task {pair_set_id!r}; GET /rating/tasks lists yours.")


@router.get("/tasks", response_model=list[Task], summary="Your rating tasks with your progress in each")
def tasks(user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[Task]:
    return [Task(pair_set_id=t["pair_set_id"], name=t["name"], instructions=t["instructions"] or "",
                 progress=Progress(done=t["done"], total=t["total"])) for t in owner.desk.tasks(user)]


@router.get("/{pair_set_id}/next", response_model=NextPair,
            summary="The next blind pair to rate (its conversation, two anonymous responses and a ticket)")
def next_pair(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> NextPair:
    view = owner.desk.next_pair(user, pair_set_id)
    if view is None:
        task = _task(owner, user, pair_set_id)
        return NextPair(finished=True, progress=Progress(done=task["done"], total=task["total"]))
    handle = book_of(owner.desk).issue(user.username, pair_set_id, view.ticket)
    return NextPair(finished=False, ticket=handle,
                    conversation=[Message(role=str(m.get("role", "")), content=str(m.get("content", "")))
                                  for m in view.messages],
                    response_1=view.response_1, response_2=view.response_2, returning=view.returning,
                    progress=Progress(done=view.done, total=view.total, skipped=view.skipped))


@router.post("/{pair_set_id}/vote", response_model=Receipt,
             summary="Vote on the pair of a ticket (a resent vote counts once)")
def vote(pair_set_id: str, body: Vote, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Receipt:
    ticket = _ticket(owner, user, pair_set_id, body.ticket)
    receipt = owner.desk.vote(user, pair_set_id, ticket, body.choice, body.rationale)
    return Receipt(status=receipt.status, message=receipt.message or f"Saved: {CHOICES[body.choice].lower()}.")


@router.post("/{pair_set_id}/skip", response_model=Receipt,
             summary="Skip the pair of a ticket: it comes back after every other pair")
def skip(pair_set_id: str, body: Skip, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Receipt:
    ticket = _ticket(owner, user, pair_set_id, body.ticket)
    owner.desk.skip(user, pair_set_id, ticket)
    return Receipt(status="skipped", message="Skipped: that pair comes back after the others.")


@router.post("/{pair_set_id}/undo", response_model=Receipt,
             summary="Take back your latest vote in this task; its pair is served next")
def undo(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Receipt:
    if owner.desk.undo(user, pair_set_id):
        return Receipt(status="undone", message="Your last vote was taken back; that pair is shown again.")
    return Receipt(status="nothing_to_undo", message="There is no vote to take back.")
