"""Case schemas shared by intake and, later, the workflow."""

from __future__ import annotations

from copy import copy
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from app.cases.models import CaseEventKind, CaseSource, CaseStage, CaseStatus, TaskStatus
from app.cases.workflow import BY_ACTION, Action, Need, Transition
from app.core.coords import CoordinateSystem, CoordinateSystemFlag, PointIn
from app.core.inputs import DatabaseId, Moment
from app.core.moments import LocalMoment
from app.routing.models import Urgency
from app.routing.schemas import RoutingProposal, UnitBrief
from app.territory.schemas import Code

#: A case's two deadlines, named the same in every answer that shows a case (the case, the
#: queues, the report receipt, the assessors' search and exports).
HandleDueAt = Annotated[
    LocalMoment | None,
    Field(
        description="Handling deadline (处置时限), in working hours: from the report, then the "
        "latest of the units' open tasks (extensions move it); kept once handled."
    ),
]
Stage = Annotated[
    CaseStage | None,
    Field(
        description="The step the case waits for: `register`, `dispatch`, `handle`, `verify` "
        "or `resume` (hung up); null once finished."
    ),
]
StageDueAt = Annotated[
    LocalMoment | None,
    Field(
        description="Deadline of that step: the handling deadline while units handle it, "
        "the verification deadline (核查时限) while it awaits verification; null when the "
        "step has none (at the centre, hung up) or the case is finished."
    ),
]


class CaseEventOut(BaseModel):
    occurred_at: LocalMoment
    kind: CaseEventKind
    actor: str | None = Field(description="Display name of who acted.")
    actor_role: str | None
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    note: str | None
    photo_ids: list[int]
    lon: float | None
    lat: float | None
    unit: UnitBrief | None = Field(
        description="The unit the step concerns: whose task was signed for, fed back, "
        "released, returned, extended or marked overdue, who reported in or missed a whistle."
    )


class NearbyCase(BaseModel):
    """An open case of the same category near a point: maybe the same problem."""

    number: str
    status: CaseStatus
    category_code: str
    urgency: Urgency
    description: str
    reported_at: LocalMoment
    report_count: int
    distance_m: float
    thumbnail_url: str | None


class ActionIn(BaseModel):
    """One step on a case. What a step needs is in `GET /api/v1/workflow`."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        default=None, description="The case version you saw, unless sent as If-Match."
    )
    note: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    photo_ids: list[DatabaseId] = Field(default_factory=list, max_length=20)
    lon: float | None = Field(
        default=None, description="With `lat`: where the actor stands (on-site steps need it)."
    )
    lat: float | None = None
    coordinate_system: CoordinateSystemFlag = CoordinateSystem.WGS84
    unit_code: Code | None = Field(
        default=None, description="Task steps: the unit acting (defaults to the caller's)."
    )
    units: list[Code] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Dispatch: the units, lead first, instead of the routing decision's.",
    )
    approved: bool | None = Field(
        default=None,
        description="Decisions (decide_return, decide_extension): true to uphold or grant.",
    )
    new_due_at: Moment | None = Field(
        default=None,
        description="request_extension: the handling deadline asked for; decide_extension: "
        "the one granted, if not the one asked. With a time zone (+08:00).",
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = Field(
        default=None,
        description="Why (reject: `invalid`, `duplicate` or `out_of_scope`; "
        "dispatch: why the units differ from the routing, in words).",
    )

    @model_validator(mode="after")
    def _whole_point(self) -> ActionIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon 与 lat 须同时给出")
        return self

    def point(self) -> PointIn | None:
        """Where the actor stands, if sent."""
        if self.lon is None or self.lat is None:
            return None
        return PointIn(lon=self.lon, lat=self.lat, coordinate_system=self.coordinate_system)


#: What every step may carry: the version, and the note, photos and position its event keeps.
_EVERY_STEP = ("version", "note", "photo_ids", "lon", "lat", "coordinate_system")
#: The body field that carries each thing a step needs or may carry.
_FIELD_OF: dict[Need, str] = {
    Need.DEADLINE: "new_due_at",
    Need.DECISION: "approved",
    Need.UNIT: "unit_code",
    Need.UNITS: "units",
    Need.REASON: "reason",
}


class StepBody(BaseModel):
    """The base of each step's own body: anything its step does not take is refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _whole_point(self) -> StepBody:
        if (getattr(self, "lon", None) is None) != (getattr(self, "lat", None) is None):
            raise ValueError("lon 与 lat 须同时给出")
        return self

    def as_action(self) -> ActionIn:
        """The step as the service takes it (what was not sent stays unset)."""
        return ActionIn.model_validate(self.model_dump(exclude_unset=True))


def step_fields(t: Transition) -> tuple[str, ...]:
    """The fields of step `t`'s body, in `ActionIn`'s order: from the workflow table."""
    wanted = {*_EVERY_STEP, *(_FIELD_OF[n] for n in t.takes if n in _FIELD_OF)}
    return tuple(name for name in ActionIn.model_fields if name in wanted)


def _step_body(t: Transition) -> type[StepBody]:
    named = {**_FIELD_OF, Need.PHOTOS: "photo_ids", Need.ON_SITE: "lon and lat, on site"}
    needed = sorted(named.get(n, n.value) for n in t.needs)
    fields: dict[str, Any] = {
        name: (ActionIn.model_fields[name].annotation, copy(ActionIn.model_fields[name]))
        for name in step_fields(t)
    }
    name = "".join(word.capitalize() for word in t.action.value.split("_")) + "StepIn"
    return create_model(
        name,
        __base__=StepBody,
        __doc__=f"{t.name_zh} (`{t.action.value}`): the body of this step. "
        + (f"Needs: {', '.join(needed)}. " if needed else "")
        + "Fields the step does not take are refused (`validation_failed`).",
        __module__=__name__,
        **fields,
    )


#: Each step's own body, derived from the workflow table (`GET /api/v1/workflow`).
STEP_BODIES: dict[Action, type[StepBody]] = {
    action: _step_body(t) for action, t in BY_ACTION.items()
}


class TaskOut(BaseModel):
    unit: UnitBrief
    is_lead: bool
    status: TaskStatus
    sign_for_due_at: LocalMoment | None
    handle_due_at: LocalMoment | None
    remaining_working_hours: float | None = Field(
        description="Working hours left to the handling deadline (negative: overdue)."
    )
    signed_at: LocalMoment | None
    done_at: LocalMoment | None
    overdue: bool = Field(description="Open and past its handling deadline.")
    escalation_level: int = Field(description="0; then 1, 2 as it escalates up the chiefs.")
    extension_requested_until: LocalMoment | None = Field(
        description="An extension asked for and not yet decided."
    )
    extension_count: int
    returns_refused: int = Field(description="Returns the centre refused (against the unit).")


class CasePlaceTimes(BaseModel):
    """Where a case is, when it was reported, is due and was closed: what every outward
    shape of a case shares (the case as answered, the exchange's case), read off the row
    (`CasePlaceTimes.model_validate(case)`)."""

    model_config = ConfigDict(from_attributes=True)

    reported_at: LocalMoment
    handle_due_at: HandleDueAt
    closed_at: LocalMoment | None
    lon: float
    lat: float
    street_code: str | None
    community_code: str | None
    grid_cell_code: str | None
    segment_code: str | None


class CaseOut(CasePlaceTimes):
    number: str
    version: int = Field(description="Send it back (If-Match) with the next step.")
    status: CaseStatus
    source: CaseSource = Field(description="A report, a whistle or an inspection.")
    category_code: str
    urgency: Urgency
    description: str
    stage: Stage
    stage_due_at: StageDueAt
    report_count: int
    rework_count: int
    urge_count: int
    reopen_count: int
    hung_up_at: LocalMoment | None
    fixed_on_spot: bool
    routing: RoutingProposal | None = Field(
        description="The routing decision (分拨建议): its id, the units proposed, the rule "
        "and why. `dispatch` without `units` gives these units their tasks. Shown to the "
        "command centre (dispatchers, admins); null for everyone else."
    )
    tasks: list[TaskOut]
    history: list[CaseEventOut]


class TransitionOut(BaseModel):
    action: str
    name_zh: str
    sources: list[CaseStatus] = Field(
        description="Where the case may come from (empty: a new case, how it enters the loop)."
    )
    targets: list[CaseStatus] = Field(
        description="Where the case may go (several: its tasks decide; empty: it stays)."
    )
    actors: list[str]
    roles: list[str]
    needs: list[str] = Field(description="note, photos, on_site, deadline, decision, unit.")
    may: list[str] = Field(
        default_factory=list,
        description="What the step may carry without needing it (units, reason, deadline).",
    )
    task_sources: list[TaskStatus] | None = Field(
        description="A task step: the statuses the unit's task must be in."
    )
    reasons: list[str] | None = Field(description="The `reason` must be one of these.")


class TaskQueueItem(BaseModel):
    """One open task in a unit's queue (待办任务), with what its next step needs: the
    case's version (`If-Match`), the unit acting, where the case is, the steps open now."""

    case_number: str
    case_version: int = Field(description="Send it as `If-Match` with the step.")
    case_status: CaseStatus
    category_code: str
    urgency: Urgency
    description: str
    lon: float = Field(description="Where the case is (WGS 84).")
    lat: float
    street_code: str | None
    community_code: str | None
    grid_cell_code: str | None
    segment_code: str | None
    unit: UnitBrief = Field(description="The unit whose task it is (`unit_code` of the step).")
    is_lead: bool
    task_status: TaskStatus
    sign_for_due_at: LocalMoment | None
    handle_due_at: LocalMoment
    overdue: bool
    warned: bool = Field(
        description="Past the warning point (deadline_warning_fraction of the handling time)."
    )
    remaining_working_hours: float = Field(description="Negative once overdue.")
    extension_requested_until: LocalMoment | None = Field(
        description="An extension asked for and not yet decided (one at a time)."
    )
    actions: list[str] = Field(
        description="The steps the unit's staff may take on the task now "
        "(`POST /api/v1/cases/{number}/actions/{action}`), from the workflow table."
    )


class CaseSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # a Case row as it is

    number: str
    status: CaseStatus
    category_code: str
    urgency: Urgency
    description: str
    street_code: str | None
    segment_code: str | None
    reported_at: LocalMoment
    handle_due_at: HandleDueAt
    stage: Stage
    stage_due_at: StageDueAt
    version: int


class DispatchQueueItem(CaseSummary):
    """A case in the command centre's queue, with what the routing proposes."""

    routing: RoutingProposal | None = Field(
        description="The routing decision: `dispatch` with this item's `version` and no "
        "`units` accepts it."
    )
