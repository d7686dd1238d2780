"""The closed loop as data: how a case enters it, every transition, who may take it, and
what it needs.

`TRANSITIONS` is the one table: its entry rows (`ENTRIES`, no from-status) are how
`app.cases.opening.open_case` opens a case, its steps (`STEPS`) what `app.cases.steps`
enforces; `GET /api/v1/workflow` publishes it, and `roadchief workflow doc` draws it into
`docs/workflow.md` (a test keeps the drawing current).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.access.rules import ROLE_PERMISSIONS, Permission, Principal
from app.accounts.models import Role
from app.cases.models import (
    HANDLING_STATUSES,
    OPEN_TASK_STATUSES,
    CaseEventKind,
    CaseSource,
    CaseStatus,
    TaskStatus,
)


class Entry(StrEnum):
    """How a case enters the loop: the table's rows without a from-status."""

    REPORT = "report"  # 上报 (the phone, a shop visit, Open311)
    FIX_ON_SPOT = "fix_on_spot"  # 当场整改: reported already fixed
    INSPECTION_FINDING = "inspection_finding"  # 考评发现: a third-party assessor's deduction
    PLATFORM_IMPORT = "platform_import"  # 平台导入: from the city's 数字城管 platform
    WHISTLE = "whistle"  # 吹哨立案: a road chief's whistle, dispatched to the summoned units


class Action(StrEnum):
    REGISTER = "register"  # 立案
    REJECT = "reject"  # 不予立案
    DISPATCH = "dispatch"  # 派遣
    SIGN_FOR = "sign_for"  # 签收
    RETURN = "return"  # 退回 (not ours)
    DECIDE_RETURN = "decide_return"  # 退回审核
    REQUEST_EXTENSION = "request_extension"  # 申请延期
    DECIDE_EXTENSION = "decide_extension"  # 延期审批
    FEED_BACK = "feed_back"  # 处置反馈
    VERIFY_PASS = "verify_pass"  # 核查通过 → 结案
    VERIFY_FAIL = "verify_fail"  # 核查不通过 → 返工
    RELEASE = "release"  # 释放协办单位
    HANG_UP = "hang_up"  # 挂账
    RESUME = "resume"  # 恢复处置
    REOPEN = "reopen"  # 重新打开
    URGE = "urge"  # 督办
    CANCEL = "cancel"  # 撤销


class Actor(StrEnum):
    """Who may act, beyond a plain role: some steps belong to a relation to the case."""

    REPORTER = "reporter"  # whoever may report a problem (in the app, or on a shop visit)
    OPEN311_CLIENT = "open311_client"  # an Open311 key (another app, a hotline)
    ASSESSOR = "assessor"  # a third-party assessor recording an inspection
    PLATFORM_IMPORTER = "platform_importer"  # the centre importing the platform's cases
    WHISTLER = "whistler"  # a road chief blowing the whistle on their own segment
    DISPATCHER = "dispatcher"  # the command centre
    TASK_UNIT_STAFF = "task_unit_staff"  # staff of a unit with a task on the case
    VERIFIER = "verifier"  # the reporter, a road chief of the segment, or a supervisor
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Need(StrEnum):
    """What a step must carry, beyond the version (or, in `Transition.may`, may carry)."""

    NOTE = "note"  # a note (说明, 理由)
    PHOTOS = "photos"  # photos of the place
    ON_SITE = "on_site"  # the actor's position, near the case's place
    DEADLINE = "deadline"  # a new deadline, in the future (`new_due_at`)
    DECISION = "decision"  # approve or refuse (`approved`)
    UNIT = "unit"  # the unit whose task the step concerns (`unit_code`)
    UNITS = "units"  # the units to dispatch to, lead first (`units`)
    REASON = "reason"  # why, in a word the table lists or in words (`reason`)


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action | Entry
    name_zh: str
    #: Where the case may come from: none for an entry row (a new case).
    sources: frozenset[CaseStatus]
    #: Where the case may go: one status for a fixed move; several when its tasks decide
    #: (`steps` checks that the step ends in one of them, or where it started).
    targets: frozenset[CaseStatus]
    actors: frozenset[Actor]
    event: CaseEventKind
    needs: frozenset[Need] = frozenset()
    #: A task step: the statuses the unit's task must be in (None: no task is involved).
    task_sources: frozenset[TaskStatus] | None = None
    #: The step's `reason` must be one of these (None: free text, or none).
    reasons: tuple[str, ...] | None = None
    #: What the step may carry without needing it (a task step's `unit_code`, and a step
    #: with `reasons` its `reason`, go without saying).
    may: frozenset[Need] = frozenset()

    @property
    def takes(self) -> frozenset[Need]:
        """Everything the step's body may carry beyond note, photos and position."""
        implied = {Need.UNIT} if self.task_sources is not None else set()
        return self.needs | self.may | implied | ({Need.REASON} if self.reasons else set())

    #: An entry row: what the new case comes from (`Case.source`).
    opens: CaseSource | None = None
    #: An entry row: the event recorded before `event`, leaving the status as it is (a fix
    #: on the spot is first a report).
    preceded_by: CaseEventKind | None = None

    @property
    def fixed_target(self) -> CaseStatus | None:
        """The status the step always moves to, unless its tasks decide."""
        return (
            next(iter(self.targets)) if len(self.targets) == 1 and not self.task_sources else None
        )


S = CaseStatus
T = TaskStatus
N = Need
OPEN = frozenset({S.PENDING_REGISTRATION, S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS})
UNFINISHED = OPEN | {S.AWAITING_VERIFICATION, S.HUNG_UP}
HANDLING = HANDLING_STATUSES
ANY_OPEN_TASK = OPEN_TASK_STATUSES


def _set(*items: Any) -> frozenset[Any]:
    return frozenset(items)


ENTRIES: tuple[Transition, ...] = (
    Transition(Entry.REPORT, "上报", frozenset(), _set(S.PENDING_REGISTRATION),
               _set(Actor.REPORTER, Actor.OPEN311_CLIENT), CaseEventKind.REPORTED,
               opens=CaseSource.REPORT),
    # Nothing to handle: the verification deadline runs at once.
    Transition(Entry.FIX_ON_SPOT, "当场整改", frozenset(), _set(S.AWAITING_VERIFICATION),
               _set(Actor.REPORTER), CaseEventKind.FIXED_ON_SPOT, _set(N.PHOTOS),
               opens=CaseSource.REPORT, preceded_by=CaseEventKind.REPORTED),
    Transition(Entry.INSPECTION_FINDING, "考评发现", frozenset(), _set(S.PENDING_REGISTRATION),
               _set(Actor.ASSESSOR), CaseEventKind.REPORTED, opens=CaseSource.INSPECTION),
    Transition(Entry.PLATFORM_IMPORT, "平台导入", frozenset(), _set(S.PENDING_REGISTRATION),
               _set(Actor.PLATFORM_IMPORTER), CaseEventKind.REPORTED,
               opens=CaseSource.PLATFORM),
    # Registered as it opens, and dispatched at once: the road chief has called the units.
    Transition(Entry.WHISTLE, "吹哨立案", frozenset(), _set(S.DISPATCHED),
               _set(Actor.WHISTLER), CaseEventKind.WHISTLE_BLOWN, _set(N.UNIT),
               opens=CaseSource.WHISTLE),
)  # fmt: skip

STEPS: tuple[Transition, ...] = (
    Transition(Action.REGISTER, "立案", _set(S.PENDING_REGISTRATION), _set(S.REGISTERED),
               _set(Actor.DISPATCHER), CaseEventKind.REGISTERED),
    Transition(Action.REJECT, "不予立案", _set(S.PENDING_REGISTRATION), _set(S.REJECTED),
               _set(Actor.DISPATCHER), CaseEventKind.REJECTED, _set(N.NOTE),
               reasons=("invalid", "duplicate", "out_of_scope")),
    # In progress at once if the new lead is a unit already at work on the case.
    Transition(Action.DISPATCH, "派遣", _set(S.REGISTERED), _set(S.DISPATCHED, S.IN_PROGRESS),
               _set(Actor.DISPATCHER), CaseEventKind.DISPATCHED, may=_set(N.UNITS, N.REASON)),
    # The lead unit's sign-for starts the handling; a cooperating unit's changes nothing.
    Transition(Action.SIGN_FOR, "签收", HANDLING, _set(S.IN_PROGRESS),
               _set(Actor.TASK_UNIT_STAFF), CaseEventKind.SIGNED_FOR,
               task_sources=_set(T.PENDING)),
    Transition(Action.RETURN, "退回", HANDLING, frozenset(),
               _set(Actor.TASK_UNIT_STAFF), CaseEventKind.RETURN_REQUESTED, _set(N.NOTE),
               task_sources=ANY_OPEN_TASK),
    # Upheld: the task ends, counted against nobody; the lead's return sends the case back
    # to dispatch. Refused: the task resumes and the refusal counts against the unit.
    Transition(Action.DECIDE_RETURN, "退回审核", HANDLING,
               _set(S.REGISTERED, S.AWAITING_VERIFICATION),
               _set(Actor.DISPATCHER), CaseEventKind.RETURN_DECIDED, _set(N.DECISION, N.UNIT),
               task_sources=_set(T.RETURN_REQUESTED)),
    Transition(Action.REQUEST_EXTENSION, "申请延期", HANDLING, frozenset(),
               _set(Actor.TASK_UNIT_STAFF), CaseEventKind.EXTENSION_REQUESTED,
               _set(N.NOTE, N.DEADLINE), task_sources=ANY_OPEN_TASK),
    Transition(Action.DECIDE_EXTENSION, "延期审批", HANDLING, frozenset(),
               _set(Actor.DISPATCHER), CaseEventKind.EXTENSION_DECIDED,
               _set(N.DECISION, N.UNIT), task_sources=ANY_OPEN_TASK, may=_set(N.DEADLINE)),
    # The last open task's feedback sends the case to verification.
    Transition(Action.FEED_BACK, "处置反馈", _set(S.IN_PROGRESS), _set(S.AWAITING_VERIFICATION),
               _set(Actor.TASK_UNIT_STAFF), CaseEventKind.FED_BACK, _set(N.NOTE, N.PHOTOS),
               task_sources=_set(T.SIGNED)),
    Transition(Action.VERIFY_PASS, "核查通过（结案）", _set(S.AWAITING_VERIFICATION),
               _set(S.CLOSED), _set(Actor.VERIFIER), CaseEventKind.VERIFIED, _set(N.ON_SITE)),
    Transition(Action.VERIFY_FAIL, "核查不通过（返工）", _set(S.AWAITING_VERIFICATION),
               _set(S.IN_PROGRESS, S.REGISTERED), _set(Actor.VERIFIER), CaseEventKind.REWORK,
               _set(N.NOTE, N.PHOTOS, N.ON_SITE)),
    Transition(Action.RELEASE, "释放协办单位", HANDLING, _set(S.AWAITING_VERIFICATION),
               _set(Actor.DISPATCHER), CaseEventKind.RELEASED, _set(N.NOTE, N.UNIT),
               task_sources=ANY_OPEN_TASK | {T.RETURN_REQUESTED}),
    Transition(Action.HANG_UP, "挂账", HANDLING, _set(S.HUNG_UP),
               _set(Actor.DISPATCHER), CaseEventKind.HUNG_UP, _set(N.NOTE)),
    # Back to where it was: in progress if the lead had signed for it, else dispatched.
    Transition(Action.RESUME, "恢复处置", _set(S.HUNG_UP), _set(S.DISPATCHED, S.IN_PROGRESS),
               _set(Actor.DISPATCHER), CaseEventKind.RESUMED),
    # Within the reopen window; to the units that handled it, or to dispatch if none did.
    Transition(Action.REOPEN, "重新打开", _set(S.CLOSED), _set(S.IN_PROGRESS, S.REGISTERED),
               _set(Actor.VERIFIER, Actor.DISPATCHER), CaseEventKind.REOPENED, _set(N.NOTE)),
    Transition(Action.URGE, "督办", UNFINISHED, frozenset(),
               _set(Actor.DISPATCHER, Actor.SUPERVISOR), CaseEventKind.URGED, _set(N.NOTE)),
    Transition(Action.CANCEL, "撤销", UNFINISHED, _set(S.CANCELLED),
               _set(Actor.ADMIN), CaseEventKind.CANCELLED, _set(N.NOTE)),
)  # fmt: skip

TRANSITIONS: tuple[Transition, ...] = ENTRIES + STEPS

#: The steps on an existing case (what `/cases/{number}/actions/{action}` takes).
BY_ACTION: dict[Action, Transition] = {t.action: t for t in STEPS if isinstance(t.action, Action)}


def entry_for(source: CaseSource, *, fixed_on_spot: bool = False) -> Transition:
    """The entry row a new case of `source` opens by (ValueError: the table has none)."""
    for t in ENTRIES:
        if t.opens == source and (t.action is Entry.FIX_ON_SPOT) == fixed_on_spot:
            return t
    raise ValueError(f"no entry row opens a case from {source.value} (fixed: {fixed_on_spot})")


def staff_actions(case_status: CaseStatus, task_status: TaskStatus) -> list[str]:
    """The steps a unit's staff may take on its task now: the table's, nothing more."""
    return [
        t.action.value
        for t in STEPS
        if Actor.TASK_UNIT_STAFF in t.actors
        and case_status in t.sources
        and t.task_sources is not None
        and task_status in t.task_sources
    ]


#: The permission (`app.access.rules`) that makes one each actor; the relation to the
#: case (the task's unit, the verifier's standing) is checked per case on top.
ACTOR_PERMISSIONS: dict[Actor, Permission] = {
    Actor.REPORTER: Permission.REPORTS_SUBMIT,
    Actor.OPEN311_CLIENT: Permission.OPEN311_SUBMIT,
    Actor.ASSESSOR: Permission.INSPECTIONS_RECORD,
    Actor.PLATFORM_IMPORTER: Permission.EXCHANGE_IMPORT,
    Actor.WHISTLER: Permission.WHISTLES_BLOW,
    Actor.DISPATCHER: Permission.CASES_DISPATCH,
    Actor.TASK_UNIT_STAFF: Permission.CASES_HANDLE,
    Actor.VERIFIER: Permission.CASES_VERIFY,
    Actor.SUPERVISOR: Permission.CASES_SUPERVISE,
    Actor.ADMIN: Permission.CASES_CANCEL,
}


def may_act(principal: Principal, actors: frozenset[Actor]) -> bool:
    """Whether `principal` holds the permission of one of `actors`."""
    return any(ACTOR_PERMISSIONS[actor] in principal.permissions for actor in actors)


def roles_of(actors: frozenset[Actor]) -> frozenset[Role]:
    """Every role that can ever be one of `actors` (by `ROLE_PERMISSIONS`)."""
    wanted = {ACTOR_PERMISSIONS[actor] for actor in actors}
    return frozenset(role for role, granted in ROLE_PERMISSIONS.items() if granted & wanted)


def acting_role(principal: Principal, actors: frozenset[Actor]) -> str | None:
    """The role an event records for its actor: the first of theirs that can be one of
    `actors`, else their first (an API key has none)."""
    roles = roles_of(actors) & principal.roles or principal.roles
    return sorted(r.value for r in roles)[0] if roles else None


def mermaid() -> str:
    """The state diagram of `TRANSITIONS` (Mermaid), as `docs/workflow.md` shows it."""
    lines = ["stateDiagram-v2"]
    for t in ENTRIES:
        for target in sorted(t.targets):
            lines.append(f"    [*] --> {target.value}: {t.name_zh}")
    for t in STEPS:
        for source in sorted(t.sources):
            for target in sorted(t.targets - {source}):
                lines.append(f"    {source.value} --> {target.value}: {t.name_zh}")
    for final in (S.CLOSED, S.REJECTED, S.CANCELLED):
        lines.append(f"    {final.value} --> [*]")
    return "\n".join(lines) + "\n"


def workflow_markdown() -> str:
    """`docs/workflow.md`: the diagram and the table, generated (`roadchief workflow doc`)."""
    rows = [
        "| step | action | from | to | who | needs | unit's task must be |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def codes(values: Any) -> str:
        return ", ".join(f"`{v.value}`" for v in sorted(values)) or "—"

    for t in TRANSITIONS:
        source = codes(t.sources) if t.sources else f"new case (`{t.opens}`)"
        to = codes(t.targets) if t.targets else "unchanged"
        if t.targets and not t.fixed_target:
            to += " (its tasks decide; or unchanged)"
        rows.append(
            f"| {t.name_zh} | `{t.action.value}` | {source} | {to} | "
            + ", ".join(sorted(f"{a.value} (`{ACTOR_PERMISSIONS[a].value}`)" for a in t.actors))
            + f" | {', '.join(sorted(n.value for n in t.needs)) or '—'}"
            + (f"; may: {', '.join(sorted(n.value for n in t.may))}" if t.may else "")
            + (f" (reason: {' / '.join(f'`{r}`' for r in t.reasons)})" if t.reasons else "")
            + f" | {codes(t.task_sources) if t.task_sources else '—'} |"
        )
    return (
        "# The case workflow (generated: `roadchief workflow doc`; do not edit)\n\n"
        "From `app/cases/workflow.py`, the table the service enforces and "
        "`GET /api/v1/workflow` publishes. The first rows are how a case enters the loop "
        "(`app.cases.opening.open_case`); the others are the steps on a case.\n\n```mermaid\n"
        + mermaid()
        + "```\n\n"
        + "\n".join(rows)
        + "\n\n"
        + NOTES
    )


NOTES = """\
## Rules the table does not show

- **Several units.** Dispatch gives each unit a task: the first is the lead (牵头), the others
  cooperate (协办). Without `units` they are the routing decision's: the units that must
  act on the case, not every unit responsible for the work item. The case awaits
  verification when the lead's task is done and every cooperating task is done, released
  or returned.
- **Deadlines** are counted in working hours on the working calendar
  (`GET /api/v1/calendar/{year}`), per category and urgency: sign-for and handling from
  dispatch, verification from the last feedback. A granted extension moves the unit's
  handling deadline; hanging up pauses every deadline and resuming shifts them by the pause.
- **Sweep** (`roadchief workflow sweep`, and inside the service every
  `ROADCHIEF_BACKGROUND_INTERVAL_SECONDS`): warns a unit when 80 % of its handling time is
  used, marks sign-for and handling overdue, escalates an overdue task to the segment's next
  road-chief level and the command centre, then one level further each
  `ROADCHIEF_ESCALATION_STEP_HOURS` working hours, marks verification overdue and a
  whistle's missed report-ins. Running it twice records nothing more.
- **Return** (退回): refused returns are counted on the task (`returns_refused`); upheld
  ones against nobody.
- **Reopen** is possible for `ROADCHIEF_REOPEN_DAYS` days after closing.
"""
