"""The taxonomy, the routing tables and "where would this go and why"."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Query, status

from app.access.deps import PrincipalDep
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.inputs import DatabaseId
from app.core.routes import api_router
from app.routing import rule_sets, service, taxonomy
from app.routing.schemas import (
    ActivateIn,
    CategoryOut,
    RouteRequest,
    RoutingDecisionOut,
    RuleSetCheck,
    RuleSetDocument,
    RuleSetOut,
    RuleSetSummary,
    TaxonomyDocument,
    TaxonomyImportResult,
    TaxonomyOut,
)
from app.territory.locator import InvalidLocation, OutsideServiceArea

router = api_router(prefix="/api/v1", tags=["routing"])
admin_router = api_router(prefix="/api/v1/admin/routing", tags=["admin: routing"])

ROUTE_PROBLEMS = (
    taxonomy.UnknownCategory,
    taxonomy.CategoryIsGroup,
    service.UnknownAsset,
    service.AssetTooFar,
    service.RoutingNotConfigured,
    OutsideServiceArea,
    InvalidLocation,
)


@router.get(
    "/categories",
    summary="The problem taxonomy (问题分类): every category, parents first",
    response_model=TaxonomyOut,
    responses=problem_responses(),
)
def get_taxonomy(
    session: SessionDep,
    principal: PrincipalDep,
    include_inactive: Annotated[
        bool, Query(description="Also categories no longer offered (old cases keep them).")
    ] = False,
) -> TaxonomyOut:
    return taxonomy.get_taxonomy(session, principal, include_inactive=include_inactive)


@router.get(
    "/categories/{code}",
    summary="One category: names, default urgency, time limits, national class",
    response_model=CategoryOut,
    responses=problem_responses(NotFound),
)
def get_category(session: SessionDep, principal: PrincipalDep, code: str) -> CategoryOut:
    return taxonomy.get_category(session, principal, code)


@router.post(
    "/routing/dry-run",
    summary="Where would this problem go, and why (nothing is stored)",
    response_model=RoutingDecisionOut,
    responses=problem_responses(*ROUTE_PROBLEMS, NotFound),
)
def dry_run(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, body: RouteRequest
) -> RoutingDecisionOut:
    """Runs the same decision a report would get. `rule_set_version` tries a draft or an
    old version instead of the active one."""
    return service.dry_run(session, principal, settings, body)


@router.get(
    "/routing/decisions/{decision_id}",
    summary="A stored routing decision: the facts, the rule-set version and the units",
    response_model=RoutingDecisionOut,
    responses=problem_responses(NotFound),
)
def get_decision(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, decision_id: DatabaseId
) -> RoutingDecisionOut:
    return service.get_decision(session, principal, settings, decision_id)


@router.get(
    "/routing/rule-sets",
    summary="Every version of the routing table, newest first",
    response_model=list[RuleSetSummary],
    responses=problem_responses(),
)
def list_rule_sets(session: SessionDep, principal: PrincipalDep) -> list[RuleSetSummary]:
    return rule_sets.list_rule_sets(session, principal)


@router.get(
    "/routing/rule-sets/active",
    summary="The routing table in force",
    response_model=RuleSetOut,
    responses=problem_responses(NotFound),
)
def get_active_rule_set(session: SessionDep, principal: PrincipalDep) -> RuleSetOut:
    return rule_sets.get_rule_set(session, principal, None)


@router.get(
    "/routing/rule-sets/{version}",
    summary="One version of the routing table, with its rules",
    response_model=RuleSetOut,
    responses=problem_responses(NotFound),
)
def get_rule_set(session: SessionDep, principal: PrincipalDep, version: DatabaseId) -> RuleSetOut:
    return rule_sets.get_rule_set(session, principal, version)


@admin_router.put(
    "/taxonomy",
    summary="Replace the taxonomy (all or nothing); categories left out become inactive",
    response_model=TaxonomyImportResult,
    responses=problem_responses(taxonomy.TaxonomyInvalid),
)
def put_taxonomy(
    session: SessionDep, principal: PrincipalDep, body: TaxonomyDocument
) -> TaxonomyImportResult:
    return taxonomy.import_taxonomy(session, principal, body)


@admin_router.post(
    "/rule-sets/validate",
    summary="Check a routing table against this deployment without storing it",
    response_model=RuleSetCheck,
    responses=problem_responses(),
)
def validate_rule_set(
    session: SessionDep, principal: PrincipalDep, body: RuleSetDocument
) -> RuleSetCheck:
    return rule_sets.validate_rule_set(session, principal, body)


@admin_router.post(
    "/rule-sets",
    summary="Upload a new version of the routing table (refused whole if anything is wrong)",
    status_code=status.HTTP_201_CREATED,
    response_model=RuleSetOut,
    responses=problem_responses(rule_sets.RuleSetInvalid, rule_sets.ActivationConflict),
)
def upload_rule_set(
    session: SessionDep,
    principal: PrincipalDep,
    body: RuleSetDocument,
    activate: Annotated[bool, Query(description="Activate it at once.")] = False,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> RuleSetOut:
    return rule_sets.upload_rule_set(session, principal, body, activate=activate, reason=reason)


@admin_router.post(
    "/rule-sets/rollback",
    summary="Re-activate the version that was in force before the current one",
    response_model=RuleSetOut,
    responses=problem_responses(
        rule_sets.NothingToRollBack,
        rule_sets.RuleSetInvalid,
        rule_sets.ActivationConflict,
    ),
)
def roll_back_rule_set(
    session: SessionDep, principal: PrincipalDep, body: Annotated[ActivateIn, Body()]
) -> RuleSetOut:
    return rule_sets.roll_back_rule_set(session, principal, body.reason)


@admin_router.post(
    "/rule-sets/{version}/activate",
    summary="Put a version in force; decisions already made keep their version",
    response_model=RuleSetOut,
    responses=problem_responses(
        NotFound,
        rule_sets.RuleSetAlreadyActive,
        rule_sets.RuleSetInvalid,
        rule_sets.ActivationConflict,
    ),
)
def activate_rule_set(
    session: SessionDep,
    principal: PrincipalDep,
    version: DatabaseId,
    body: Annotated[ActivateIn, Body()],
) -> RuleSetOut:
    return rule_sets.activate_rule_set(session, principal, version, body.reason)
