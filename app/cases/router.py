"""Cases: read one, take a step of the closed loop, read the workflow table."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Response

from app.access.deps import PrincipalDep
from app.accounts.models import Role
from app.cases import errors, queues, steps, view
from app.cases.models import TaskStatus
from app.cases.schemas import (
    STEP_BODIES,
    CaseOut,
    CaseSummary,
    DispatchQueueItem,
    StepBody,
    TaskQueueItem,
    TransitionOut,
)
from app.cases.workflow import BY_ACTION, TRANSITIONS, Action, Actor, Need, Transition, roles_of
from app.core.contract import ETAG_RESPONSE
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, Problem, problem_responses
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router
from app.media.service import UnknownPhoto
from app.territory.locator import InvalidLocation, OutsideServiceArea
from app.territory.service import UnknownUnit

router = api_router(prefix="/api/v1", tags=["cases"])

#: What every step may answer, whatever it carries (photos and a position included).
EVERY_STEP_PROBLEMS: tuple[type[Problem], ...] = (
    NotFound,
    errors.VersionRequired,
    errors.VersionConflict,
    errors.TransitionNotAllowed,
    UnknownPhoto,
    OutsideServiceArea,
    InvalidLocation,
)
#: What a step's own handler refuses beyond what the table shows.
HANDLER_PROBLEMS: dict[Action, tuple[type[Problem], ...]] = {
    Action.DISPATCH: (UnknownUnit, errors.NoteRequired),
    Action.REQUEST_EXTENSION: (errors.ExtensionPending,),
    Action.DECIDE_EXTENSION: (errors.NoExtensionRequest,),
    Action.REOPEN: (errors.ReopenWindowPassed,),
}


def step_problems(t: Transition) -> tuple[type[Problem], ...]:
    """The problems step `t` may answer: read off its row of the workflow table."""
    found = [*EVERY_STEP_PROBLEMS]
    required = {
        Need.NOTE: errors.NoteRequired,
        Need.PHOTOS: errors.PhotosRequired,
        Need.DECISION: errors.DecisionRequired,
        Need.DEADLINE: errors.DeadlineRequired,
        Need.ON_SITE: errors.LocationRequired,
    }
    found += [problem for need, problem in required.items() if need in t.needs]
    if Need.ON_SITE in t.needs:
        found.append(errors.TooFarFromCase)
    if t.reasons:
        found.append(errors.ReasonRequired)
    if Need.DEADLINE in t.takes:
        found += [errors.DeadlineInPast, errors.DeadlineTooFar, errors.DeadlineNotLater]
    if t.task_sources is not None:
        staff = Actor.TASK_UNIT_STAFF in t.actors
        found += [errors.NoTaskForUnit, UnknownUnit if staff else errors.UnitRequired]
    found += HANDLER_PROBLEMS.get(t.action, ()) if isinstance(t.action, Action) else ()
    return tuple(dict.fromkeys(found))


@router.get(
    "/workflow",
    summary="The closed loop as a table: each step, from which states, by whom, needing what",
    response_model=list[TransitionOut],
    responses=problem_responses(),
)
def get_workflow(principal: PrincipalDep) -> list[TransitionOut]:
    """The same table the service enforces (`app/cases/workflow.py`)."""
    return [
        TransitionOut(
            action=t.action.value,
            name_zh=t.name_zh,
            sources=sorted(t.sources),
            targets=sorted(t.targets),
            actors=sorted(a.value for a in t.actors),
            roles=sorted(r.value for r in roles_of(t.actors) - {Role.ADMIN}),
            needs=sorted(n.value for n in t.needs),
            may=sorted(n.value for n in t.may),
            task_sources=sorted(t.task_sources) if t.task_sources else None,
            reasons=list(t.reasons) if t.reasons else None,
        )
        for t in TRANSITIONS
    ]


@router.get(
    "/cases/{number}",
    summary="One case: status, version, tasks with deadlines, and its whole history",
    response_model=CaseOut,
    responses={**problem_responses(NotFound), **ETAG_RESPONSE},
)
def get_case(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    number: str,
) -> CaseOut:
    case = view.get_case(session, settings, principal, number)
    response.headers["ETag"] = f'"{case.version}"'
    return case


IfMatch = Annotated[
    str | None, Header(description='The version you saw: `"3"` (or `version` in the body).')
]


def _step_route(action: Action, t: Transition) -> None:
    """`POST /cases/{number}/actions/<action>`: one operation per step, each with its own
    body (`STEP_BODIES`, from the workflow table), so a client sees what each step takes."""

    def take_step(
        response: Response,
        session: SessionDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        number: str,
        body: StepBody,
        if_match: IfMatch = None,
    ) -> CaseOut:
        case = steps.perform(
            session, settings, principal, number, action, body.as_action(), if_match
        )
        response.headers["ETag"] = f'"{case.version}"'
        return case

    # The body's type is the step's own model (the string annotations resolve at module level).
    take_step.__annotations__["body"] = STEP_BODIES[action]
    needs = ", ".join(sorted(n.value for n in t.needs)) or "nothing more"
    router.add_api_route(
        f"/cases/{{number}}/actions/{t.action.value}",
        take_step,
        methods=["POST"],
        name=f"{t.action.value}_case",
        summary=f"{t.name_zh} ({t.action.value}): take this step on a case",
        description=f"Who: {', '.join(sorted(a.value for a in t.actors))}. Needs: {needs}. "
        "Send the version you saw (`If-Match` or `version`); a stale one is "
        "`409 version_conflict` with the current case in `case`, so two people acting at "
        "once cannot both win.",
        response_model=CaseOut,
        responses={**problem_responses(*step_problems(t)), **ETAG_RESPONSE},
    )


for _action, _transition in BY_ACTION.items():  # the steps; the entry rows are no action
    _step_route(_action, _transition)


@router.get(
    "/tasks",
    summary="My unit's open tasks, soonest handling deadline first (department staff)",
    response_model=Page[TaskQueueItem],
    responses=problem_responses(),
)
def unit_tasks(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    unit: Annotated[str | None, Query(description="Defaults to the caller's unit.")] = None,
    status: TaskStatus | None = None,
    category: Annotated[str | None, Query(description="A category code.")] = None,
    street: Annotated[str | None, Query(description="A street office's code.")] = None,
    overdue: bool | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[TaskQueueItem]:
    items, next_cursor = queues.unit_tasks(
        session,
        settings,
        principal,
        unit_code=unit,
        status=status,
        category=category,
        street=street,
        overdue=overdue,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/queues/dispatch",
    summary="The command centre's queue: to register, dispatch, decide returns or extensions",
    response_model=Page[DispatchQueueItem],
    responses=problem_responses(),
)
def dispatch_queue(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    stage: queues.DispatchStage | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[DispatchQueueItem]:
    """Oldest first; each case with its routing proposal (`routing`)."""
    items, next_cursor = queues.dispatch_queue(
        session, settings, principal, stage=stage, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/queues/verification",
    summary="Cases awaiting my verification (my reports, my segments; supervisors: my scope)",
    response_model=Page[CaseSummary],
    responses=problem_responses(),
)
def verification_queue(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[CaseSummary]:
    items, next_cursor = queues.verification_queue(
        session, settings, principal, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
