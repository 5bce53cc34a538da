"""Roles and permissions: the one place that says who may do what.

Every core function that changes state takes the acting `User` and calls `require` before
touching anything, so hiding a page is never the only guard. The dashboard's navigation
reads `pages_for(role)` from here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from core.errors import PermissionDenied


class Role(str, Enum):
    RATER = "rater"
    LEAD = "lead"
    ENGINEER = "engineer"


ROLES = tuple(r.value for r in Role)


class Action(str, Enum):
    DATA_VIEW = "data.view"
    DATA_IMPORT = "data.import"
    USERS_MANAGE = "users.manage"
    JOBS_VIEW = "jobs.view"
    JOBS_RUN = "jobs.run"
    GENERATE = "generate"  # generation sets and the playground: outputs labeled by model, never for raters
    REVIEW_RATE = "review.rate"  # vote on one's own assigned blind pairs
    REVIEW_MANAGE = "review.manage"  # create pair sets, assign raters, mark gold, withdraw pairs, exclude raters
    REVIEW_RESULTS = "review.results"  # win rates, rankings, agreement, rater quality, exports
    REVIEW_REVEAL = "review.reveal"  # drill down into single pairs with the model names shown
    METRICS_VIEW = "metrics.view"  # task metrics and regression gates per model version, drill-down, exports
    PROMOTE = "promote"  # promote a model version (a passing gate, or an override with a written reason)


# Which roles may perform each action (DESIGN.md, "Users and roles").
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.DATA_VIEW: frozenset({Role.LEAD, Role.ENGINEER}),
    Action.DATA_IMPORT: frozenset({Role.ENGINEER}),
    Action.USERS_MANAGE: frozenset({Role.ENGINEER}),
    Action.JOBS_VIEW: frozenset({Role.LEAD, Role.ENGINEER}),
    Action.JOBS_RUN: frozenset({Role.ENGINEER}),
    Action.GENERATE: frozenset({Role.LEAD, Role.ENGINEER}),
    Action.REVIEW_RATE: frozenset({Role.RATER}),
    Action.REVIEW_MANAGE: frozenset({Role.LEAD, Role.ENGINEER}),
    Action.REVIEW_RESULTS: frozenset({Role.LEAD, Role.ENGINEER}),
    # Lead only (issue [review]): the person accountable for the verdict sees single pairs unblinded.
    Action.REVIEW_REVEAL: frozenset({Role.LEAD}),
    Action.METRICS_VIEW: frozenset({Role.LEAD, Role.ENGINEER}),
    Action.PROMOTE: frozenset({Role.ENGINEER}),
}

# Pages of the dashboard and the action each needs; navigation shows only what is allowed.
PAGES: dict[str, Action | None] = {
    "rate": Action.REVIEW_RATE,
    "home": Action.METRICS_VIEW,
    "data": Action.DATA_VIEW,
    "train": Action.JOBS_RUN,
    "models": Action.JOBS_VIEW,
    "generations": Action.GENERATE,
    "playground": Action.GENERATE,
    "review": Action.REVIEW_MANAGE,
    "results": Action.REVIEW_RESULTS,
    "judges": Action.JOBS_RUN,
    "metrics": Action.METRICS_VIEW,
    "regression": Action.METRICS_VIEW,
    "users": Action.USERS_MANAGE,
    "account": None,  # every signed-in user: own password
}


@dataclass(frozen=True)
class User:
    username: str
    role: Role

    def may(self, action: Action) -> bool:
        return self.role in PERMISSIONS[action]


# The command line acts with engineer rights: whoever can run it can read the workspace files.
CLI_USER = User("cli", Role.ENGINEER)


# The owning process acting on its own behalf (recomputing stored results after a method change).
OWNER = User("tuneboard", Role.ENGINEER)


def require(user: User | None, action: Action) -> User:
    if user is None:
        raise PermissionDenied(f"Log in first: '{action.value}' needs an account.")
    if not user.may(action):
        allowed = ", ".join(sorted(r.value for r in PERMISSIONS[action]))
        raise PermissionDenied(
            f"{user.username} ({user.role.value}) may not do '{action.value}'; it needs the role {allowed}.")
    return user


def pages_for(role: Role) -> list[str]:
    return [page for page, action in PAGES.items() if action is None or role in PERMISSIONS[action]]
