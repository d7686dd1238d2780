"""The closed loop as data: every transition, who may take it, and what it needs.

`TRANSITIONS` is the one table: `app.cases.actions` enforces it, `GET /api/v1/workflow`
publishes it, and `roadchief workflow diagram` draws it into `docs/workflow.md` (a test
keeps the drawing current).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.accounts.models import Role
from app.cases.models import CaseEventKind, CaseStatus


class Action(StrEnum):
    REGISTER = "register"  # 立案
    REJECT = "reject"  # 不予立案
    DISPATCH = "dispatch"  # 派遣
    SIGN_FOR = "sign_for"  # 签收
    FEED_BACK = "feed_back"  # 处置反馈
    VERIFY_PASS = "verify_pass"  # 核查通过 → 结案
    VERIFY_FAIL = "verify_fail"  # 核查不通过 → 返工
    RELEASE = "release"  # 释放协办单位
    URGE = "urge"  # 督办
    CANCEL = "cancel"  # 撤销


class Actor(StrEnum):
    """Who may act, beyond a plain role: some steps belong to a relation to the case."""

    DISPATCHER = "dispatcher"  # the command centre
    TASK_UNIT_STAFF = "task_unit_staff"  # staff of a unit with a task on the case
    VERIFIER = "verifier"  # the reporter, a road chief of the segment, or a supervisor
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    name_zh: str
    sources: frozenset[CaseStatus]
    #: None: the case keeps its status, or the tasks decide it (see `actions`).
    target: CaseStatus | None
    actors: frozenset[Actor]
    event: CaseEventKind
    needs_note: bool = False
    needs_photos: bool = False
    #: The actor must stand near the case's place (verification on site).
    needs_location: bool = False


S = CaseStatus
OPEN = frozenset({S.PENDING_REGISTRATION, S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS})
UNFINISHED = OPEN | {S.AWAITING_VERIFICATION}

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        Action.REGISTER, "立案", frozenset({S.PENDING_REGISTRATION}), S.REGISTERED,
        frozenset({Actor.DISPATCHER}), CaseEventKind.REGISTERED,
    ),
    Transition(
        Action.REJECT, "不予立案", frozenset({S.PENDING_REGISTRATION}), S.REJECTED,
        frozenset({Actor.DISPATCHER}), CaseEventKind.REJECTED, needs_note=True,
    ),
    Transition(
        Action.DISPATCH, "派遣", frozenset({S.REGISTERED}), S.DISPATCHED,
        frozenset({Actor.DISPATCHER}), CaseEventKind.DISPATCHED,
    ),
    Transition(
        Action.SIGN_FOR, "签收", frozenset({S.DISPATCHED, S.IN_PROGRESS}), None,
        frozenset({Actor.TASK_UNIT_STAFF}), CaseEventKind.SIGNED_FOR,
    ),
    Transition(
        Action.FEED_BACK, "处置反馈", frozenset({S.IN_PROGRESS}), None,
        frozenset({Actor.TASK_UNIT_STAFF}), CaseEventKind.FED_BACK,
        needs_note=True, needs_photos=True,
    ),
    Transition(
        Action.VERIFY_PASS, "核查通过（结案）", frozenset({S.AWAITING_VERIFICATION}), S.CLOSED,
        frozenset({Actor.VERIFIER}), CaseEventKind.VERIFIED, needs_location=True,
    ),
    Transition(
        Action.VERIFY_FAIL, "核查不通过（返工）", frozenset({S.AWAITING_VERIFICATION}),
        S.IN_PROGRESS, frozenset({Actor.VERIFIER}), CaseEventKind.REWORK,
        needs_note=True, needs_photos=True, needs_location=True,
    ),
    Transition(
        Action.RELEASE, "释放协办单位", frozenset({S.DISPATCHED, S.IN_PROGRESS}), None,
        frozenset({Actor.DISPATCHER}), CaseEventKind.RELEASED, needs_note=True,
    ),
    Transition(
        Action.URGE, "督办", UNFINISHED, None,
        frozenset({Actor.DISPATCHER, Actor.SUPERVISOR}), CaseEventKind.URGED, needs_note=True,
    ),
    Transition(
        Action.CANCEL, "撤销", UNFINISHED, S.CANCELLED,
        frozenset({Actor.ADMIN}), CaseEventKind.CANCELLED, needs_note=True,
    ),
)  # fmt: skip

BY_ACTION: dict[Action, Transition] = {t.action: t for t in TRANSITIONS}

#: Which roles can ever be each actor (the relation to the case is checked per case).
ACTOR_ROLES: dict[Actor, frozenset[Role]] = {
    Actor.DISPATCHER: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Actor.TASK_UNIT_STAFF: frozenset({Role.DEPARTMENT_STAFF, Role.ADMIN}),
    Actor.VERIFIER: frozenset({Role.ROAD_CHIEF, Role.PATROLLER, Role.SUPERVISOR, Role.ADMIN}),
    Actor.SUPERVISOR: frozenset({Role.SUPERVISOR, Role.ADMIN}),
    Actor.ADMIN: frozenset({Role.ADMIN}),
}


def mermaid() -> str:
    """The state diagram of `TRANSITIONS` (Mermaid), as `docs/workflow.md` shows it."""
    lines = [
        "stateDiagram-v2",
        "    [*] --> pending_registration: 上报",
        "    [*] --> awaiting_verification: 当场整改",
    ]
    for t in TRANSITIONS:
        for source in sorted(t.sources):
            for target in [t.target] if t.target else _task_driven_targets(t.action, source):
                lines.append(f"    {source.value} --> {target.value}: {t.name_zh}")
    for final in (S.CLOSED, S.REJECTED, S.CANCELLED):
        lines.append(f"    {final.value} --> [*]")
    return "\n".join(lines) + "\n"


def _task_driven_targets(action: Action, source: CaseStatus) -> list[CaseStatus]:
    """Where a task-level step can take the case from `source` (its tasks decide)."""
    if action is Action.SIGN_FOR and source is S.DISPATCHED:
        return [S.IN_PROGRESS, S.DISPATCHED]  # the lead unit's sign-for starts the handling
    if action in (Action.FEED_BACK, Action.RELEASE) and source is S.IN_PROGRESS:
        return [S.IN_PROGRESS, S.AWAITING_VERIFICATION]  # the last open task closes it
    return [source]


def workflow_markdown() -> str:
    """`docs/workflow.md`: the diagram and the table, generated (`roadchief workflow doc`)."""
    rows = [
        "| step | action | from | to | who | needs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in TRANSITIONS:
        needs = [n for n, on in (("note", t.needs_note), ("photos", t.needs_photos),
                                 ("on site", t.needs_location)) if on]  # fmt: skip
        rows.append(
            f"| {t.name_zh} | `{t.action.value}` | "
            + ", ".join(f"`{s.value}`" for s in sorted(t.sources))
            + f" | {f'`{t.target.value}`' if t.target else 'by the tasks / unchanged'} | "
            + ", ".join(sorted(a.value for a in t.actors))
            + f" | {', '.join(needs) or '—'} |"
        )
    return (
        "# The case workflow (generated: `roadchief workflow doc`; do not edit)\n\n"
        "From `app/cases/workflow.py`, the table the service enforces and "
        "`GET /api/v1/workflow` publishes.\n\n```mermaid\n"
        + mermaid()
        + "```\n\n"
        + "\n".join(rows)
        + "\n"
    )
