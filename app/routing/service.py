"""Deciding who must act (分拨): gather the facts of a place, apply the active rule set.

The slow-changing parts (taxonomy, units, jurisdiction paths, compiled rule sets) are
kept per process in a `RoutingContext`, keyed by a stamp read in one small query on
every decision, so an admin's change is seen by the next decision on every server.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.accounts.models import SegmentChief, User
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.core.geo import LocalFrame
from app.routing.models import Category, DecisionBasis, RoutingDecision, RuleSet, RuleSetStatus
from app.routing.rule_sets import check_document
from app.routing.rules import CategoryNode, CompiledRuleSet, assign, category_lineage
from app.routing.schemas import (
    TERRITORY,
    AssetFact,
    ChiefBrief,
    MatchedRule,
    RouteRequest,
    RoutingDecisionOut,
    RoutingFacts,
    RoutingProposal,
    RuleSetDocument,
    SegmentFact,
    UnitBrief,
)
from app.routing.taxonomy import load_taxonomy, require_leaf
from app.territory.locator import (
    grid_cell_code,
    nearest_assets,
    nearest_segment,
    place_point,
    wgs84_in_area,
)
from app.territory.models import (
    Asset,
    Jurisdiction,
    JurisdictionLevel,
    RoadGrade,
    RoadSegment,
    Unit,
    UnitKind,
)

if TYPE_CHECKING:
    from app.settings import Settings


class UnknownAsset(Problem):
    code = "unknown_asset"
    status = 422
    title = "部件不存在"


class AssetTooFar(Problem):
    code = "asset_too_far"
    status = 422
    title = "所选部件离上报位置太远"


class RoutingNotConfigured(Problem):
    code = "routing_not_configured"
    status = 409
    title = "尚未启用分拨规则，也没有指挥中心单位可兜底"


ROAD_GRADE_NAMES = {
    RoadGrade.TRUNK: "主干道",
    RoadGrade.SECONDARY: "次干道",
    RoadGrade.BRANCH: "支路",
    RoadGrade.BACK_LANE: "背街小巷",
}
CHIEF_LEVEL_NAMES = {1: "一级", 2: "二级", 3: "三级"}


@dataclass
class RoutingContext:
    """What routing reads on every decision and that changes only by admin action."""

    taxonomy: dict[str, CategoryNode]
    units: dict[str, UnitBrief]
    #: Street jurisdiction code → its street office unit code (属地).
    street_offices: dict[str, str]
    jurisdiction_paths: dict[str, str]
    #: The active rule set: (id, document hash), or None.
    active_rule_set: tuple[int, str] | None
    compiled: dict[tuple[int, str], tuple[RuleSet, CompiledRuleSet]] = field(default_factory=dict)

    def rule_set(self, session: Session, key: tuple[int, str]) -> tuple[RuleSet, CompiledRuleSet]:
        """A rule set compiled leniently: the deployment may have changed since it was
        checked, and a report must still be routed (see `compile_rule_set`)."""
        # Keyed by the document's hash too: ids are reused after a rolled-back upload.
        if key not in self.compiled:
            row = session.get(RuleSet, key[0])
            assert row is not None
            document = RuleSetDocument.model_validate(row.document)
            compiled, _ = check_document(session, document, strict=False)
            assert compiled is not None
            session.expunge(row)
            self.compiled[key] = (row, compiled)
        return self.compiled[key]

    def command_centre(self) -> UnitBrief:
        centre = next((u for u in self.units.values() if u.kind == UnitKind.COMMAND_CENTRE), None)
        if centre is None:
            raise RoutingNotConfigured()
        return centre


def _stamp_query() -> Any:
    active = select(RuleSet.id, RuleSet.document_sha256).where(
        RuleSet.status == RuleSetStatus.ACTIVE
    )
    # Rows of these tables are created and updated, never deleted (old cases keep them),
    # so the latest updated_at of each shows every change.
    return select(
        active.with_only_columns(RuleSet.id).scalar_subquery(),
        active.with_only_columns(RuleSet.document_sha256).scalar_subquery(),
        *(select(func.max(m.updated_at)).scalar_subquery() for m in (Category, Unit, Jurisdiction)),
    )


_STAMP = _stamp_query()
_contexts: dict[tuple[str, tuple[Any, ...]], RoutingContext] = {}


def routing_context(session: Session) -> RoutingContext:
    """The current context, rebuilt only when the stamp says something changed."""
    stamp = tuple(session.connection().execute(_STAMP).one())
    key = (str(session.get_bind().engine.url), stamp)
    context = _contexts.get(key)
    if context is None:
        units = {
            code: UnitBrief(code=code, name=name, kind=kind)
            for code, name, kind in session.execute(select(Unit.code, Unit.name, Unit.kind))
        }
        street_offices = dict(
            session.execute(
                select(Jurisdiction.code, Unit.code)
                .join(Unit, Unit.jurisdiction_id == Jurisdiction.id)
                .where(Unit.kind == UnitKind.STREET_OFFICE)
                .order_by(Unit.code.desc())
            ).all()
        )
        context = RoutingContext(
            taxonomy=load_taxonomy(session),
            units=units,
            street_offices=street_offices,
            jurisdiction_paths=dict(
                session.execute(select(Jurisdiction.code, Jurisdiction.path)).all()
            ),
            active_rule_set=(stamp[0], stamp[1]) if stamp[0] is not None else None,
        )
        # Old stamps of this database are useless once the stamp has moved on.
        for old in [k for k in _contexts if k[0] == key[0]]:
            del _contexts[old]
        _contexts[key] = context
    return context


# --- facts -----------------------------------------------------------------------------------


_CHIEFS = (
    select(SegmentChief.level, User.id, User.display_name)
    .join(User, SegmentChief.user_id == User.id)
    .join(RoadSegment, SegmentChief.segment_id == RoadSegment.id)
    .where(RoadSegment.code == bindparam("code"), User.is_active)
    .order_by(SegmentChief.level)
)

_ASSET = (
    select(Asset.code, Asset.asset_type, Unit.code, func.ST_AsBinary(Asset.geom, type_=None))
    .join(Unit, Asset.owner_unit_id == Unit.id)
    .where(Asset.code == bindparam("code"))
)


def segment_chiefs(session: Session, segment_code: str) -> list[ChiefBrief]:
    """The road chiefs of a segment, level 1 first (active accounts only)."""
    rows = session.connection().execute(_CHIEFS, {"code": segment_code}).all()
    return [ChiefBrief(level=lv, user_id=uid, display_name=name) for lv, uid, name in rows]


def _asset_fact(
    session: Session, settings: Settings, frame: LocalFrame, asset_code: str
) -> AssetFact:
    row = session.connection().execute(_ASSET, {"code": asset_code}).one_or_none()
    if row is None:
        raise UnknownAsset(f"部件“{asset_code}”不存在", asset_code=asset_code)
    code, asset_type, owner_code, wkb = row
    distance = round(frame.distance_m(shapely.from_wkb(bytes(wkb))), 2)
    if distance > settings.routing_asset_max_distance_m:
        raise AssetTooFar(
            f"部件“{asset_code}”距上报位置 {distance:.0f} 米，超过 "
            f"{settings.routing_asset_max_distance_m:.0f} 米：请确认部件编号或位置",
            asset_code=asset_code,
            distance_m=distance,
        )
    return AssetFact(
        code=code, asset_type=asset_type, owner_unit_code=owner_code, distance_m=distance
    )


def gather_facts(
    session: Session,
    settings: Settings,
    context: RoutingContext,
    category: CategoryNode,
    lon: float,
    lat: float,
    asset_code: str | None,
) -> RoutingFacts:
    """Everything a decision looks at: the territory look-ups (块) of the point."""
    places = {p.level: p for p in place_point(session, settings, lon, lat)}
    frame = LocalFrame(lon, lat)
    located = nearest_segment(session, frame, settings.locate_segment_radius_m)
    segment = (
        SegmentFact(
            code=located.code,
            name=located.name,
            grade=located.grade,
            distance_m=located.distance_m,
            chiefs=segment_chiefs(session, located.code),
        )
        if located
        else None
    )
    return RoutingFacts(
        lon=lon,
        lat=lat,
        category_code=category.code,
        category_path=category_lineage(context.taxonomy, category.code),
        street=places.get(JurisdictionLevel.STREET),
        community=places.get(JurisdictionLevel.COMMUNITY),
        grid_cell_code=grid_cell_code(session, lon, lat),
        segment=segment,
        asset=_asset_fact(session, settings, frame, asset_code) if asset_code else None,
        nearby_assets=nearest_assets(
            session, frame, settings.locate_asset_radius_m, settings.locate_asset_limit
        ),
    )


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision before it is stored (a dry run) or after (`row`)."""

    out: RoutingDecisionOut
    rule_set_id: int | None
    jurisdiction_path: str


def _deepest_path(context: RoutingContext, facts: RoutingFacts) -> str:
    place = facts.community or facts.street
    if place is not None:
        return context.jurisdiction_paths[place.code]
    # Only the district holds the point: its path is the shortest of all.
    return min(context.jurisdiction_paths.values(), key=len)


def _explain(
    context: RoutingContext,
    facts: RoutingFacts,
    rule_set: RuleSet | None,
    basis: DecisionBasis,
    matched: MatchedRule | None,
    notes: tuple[str, ...],
    lead: list[UnitBrief],
    cooperating: list[UnitBrief],
    territorial: UnitBrief | None,
    responsible: tuple[str, ...],
) -> list[str]:
    def unit_name(code: str) -> str:
        unit = context.units.get(code)
        return unit.name if unit else code

    lines = []
    category = context.taxonomy[facts.category_code]
    lines.append(f"问题类别：{category.name}（{category.code}）")
    where = " / ".join(p.name for p in (facts.street, facts.community) if p) or "区内"
    cell = f"，单元网格 {facts.grid_cell_code}" if facts.grid_cell_code else ""
    lines.append(f"位置：{where}{cell}")
    if facts.segment:
        s = facts.segment
        chiefs = "、".join(
            f"{CHIEF_LEVEL_NAMES.get(c.level, c.level)}路长 {c.display_name}" for c in s.chiefs
        )
        lines.append(
            f"最近路段：{s.name}（{ROAD_GRADE_NAMES[s.grade]}，相距 {s.distance_m:.0f} 米）"
            + (f"，{chiefs}" if chiefs else "，尚无路长")
        )
    else:
        lines.append("附近没有路段")
    if facts.asset:
        a = facts.asset
        lines.append(
            f"部件：{a.code}，产权单位 {unit_name(a.owner_unit_code)}，"
            f"距上报位置 {a.distance_m:.0f} 米"
        )
    if rule_set is None:
        lines.append("尚未启用分拨规则：由指挥中心受理")
    elif matched is not None:
        item = f"「{matched.item}」" if matched.item else ""
        lines.append(f"规则集 v{rule_set.version}《{rule_set.name}》：适用规则 {matched.id}{item}")
    else:
        lines.append(f"规则集 v{rule_set.version}《{rule_set.name}》：没有适用的规则，转兜底单位")
    if basis is DecisionBasis.ASSET_OWNER:
        lines.append("部件产权单位优先：由产权单位牵头，规则中的牵头单位改为协办")
    if "asset_not_of_category" in notes:
        lines.append("该部件类型与问题类别无关：产权单位不改变分拨")
    if "no_territorial_unit" in notes:
        lines.append("该位置没有对应的街道办事处单位，规则中的“属地”无人可派")
    lines.append("牵头：" + "、".join(u.name for u in lead))
    if cooperating:
        lines.append("协办：" + "、".join(u.name for u in cooperating))
    if territorial is None:
        lines.append("属地：无（该位置没有街道办事处单位）")
    elif territorial in (*lead, *cooperating):
        lines.append(f"属地：{territorial.name}（按规则参与处置）")
    else:
        lines.append(f"属地：{territorial.name}（记录在案，本规则不派属地任务）")
    tasked = {u.code for u in (*lead, *cooperating)}
    others = [
        "各街道（镇）" if code == TERRITORY else unit_name(code)
        for code in responsible
        if code not in tasked
    ]
    if others:
        lines.append(
            "该工作项的其他责任单位（用于专项整治和考核，不逐案派遣）：" + "、".join(others)
        )
    return lines


def decide(
    session: Session,
    principal: Principal,
    settings: Settings,
    request: RouteRequest,
    *,
    allow_other_version: bool = False,
) -> Decision:
    """Who must act on this problem, and why; nothing is stored."""
    principal.require(Permission.ROUTING_READ)
    context = routing_context(session)
    category = require_leaf(context.taxonomy, request.category_code)
    facts = gather_facts(
        session, settings, context, category, *wgs84_in_area(settings, request), request.asset_code
    )
    return decide_on_facts(
        session,
        context,
        facts,
        settings.zone,
        rule_set_version=request.rule_set_version if allow_other_version else None,
    )


def decide_on_facts(
    session: Session,
    context: RoutingContext,
    facts: RoutingFacts,
    zone: tzinfo,
    *,
    rule_set_version: int | None = None,
) -> Decision:
    """Apply a rule set (the active one unless a version is named) to gathered facts."""
    key = context.active_rule_set
    if rule_set_version is not None:
        found = session.execute(
            select(RuleSet.id, RuleSet.document_sha256).where(RuleSet.version == rule_set_version)
        ).one_or_none()
        if found is None:
            raise NotFound(f"分拨规则 v{rule_set_version} 不存在")
        key = (found[0], found[1])
    rule_set_id = key[0] if key else None
    street_code = facts.street.code if facts.street else None
    territorial_code = context.street_offices.get(street_code) if street_code else None
    category = context.taxonomy[facts.category_code]
    rule_set: RuleSet | None = None
    responsible: tuple[str, ...] = ()
    notes: tuple[str, ...]
    if key is None:
        basis, matched, notes = DecisionBasis.FALLBACK, None, ()
        lead_codes, cooperating_codes = [context.command_centre().code], []
    else:
        rule_set, compiled = context.rule_set(session, key)
        assignment = assign(
            compiled,
            category.code,
            jurisdiction_path=_deepest_path(context, facts),
            road_grade=facts.segment.grade if facts.segment else None,
            territorial_unit=territorial_code,
            category_asset_types=category.asset_types,
            asset_type=facts.asset.asset_type if facts.asset else None,
            asset_owner=facts.asset.owner_unit_code if facts.asset else None,
        )
        basis, notes = assignment.basis, assignment.notes
        matched = (
            MatchedRule(id=assignment.rule.id, item=assignment.rule.item)
            if assignment.rule
            else None
        )
        responsible = assignment.rule.responsible if assignment.rule else ()
        lead_codes, cooperating_codes = list(assignment.lead), list(assignment.cooperating)
    lead = [context.units[c] for c in lead_codes if c in context.units]
    if not lead:  # the table's fallback unit no longer exists
        basis, lead = DecisionBasis.FALLBACK, [context.command_centre()]
    cooperating = [context.units[c] for c in cooperating_codes if c in context.units]
    territorial = context.units.get(territorial_code) if territorial_code else None
    out = RoutingDecisionOut(
        id=None,
        decided_at=utcnow().astimezone(zone),
        rule_set_version=rule_set.version if rule_set else None,
        rule_set_name=rule_set.name if rule_set else None,
        category_code=category.code,
        basis=basis,
        matched_rule=matched,
        lead_units=lead,
        cooperating_units=cooperating,
        territorial_unit=territorial,
        facts=facts,
        explanation=_explain(
            context,
            facts,
            rule_set,
            basis,
            matched,
            notes,
            lead,
            cooperating,
            territorial,
            responsible,
        ),
    )
    return Decision(
        out=out, rule_set_id=rule_set_id, jurisdiction_path=_deepest_path(context, facts)
    )


def dry_run(
    session: Session, principal: Principal, settings: Settings, request: RouteRequest
) -> RoutingDecisionOut:
    """Where would this go and why: the decision, without storing anything."""
    return decide(session, principal, settings, request, allow_other_version=True).out


def record_decision(session: Session, principal: Principal, decision: Decision) -> RoutingDecision:
    """Add a decision to the session; it commits with the case it routes."""
    out = decision.out
    row = RoutingDecision(
        decided_at=out.decided_at,
        decided_by_user_id=principal.user_id,
        rule_set_id=decision.rule_set_id,
        category_code=out.category_code,
        jurisdiction_path=decision.jurisdiction_path,
        geom=from_shape(Point(out.facts.lon, out.facts.lat), srid=4326),
        basis=out.basis,
        matched_rule_id=out.matched_rule.id if out.matched_rule else None,
        lead_unit_codes=[u.code for u in out.lead_units],
        cooperating_unit_codes=[u.code for u in out.cooperating_units],
        territorial_unit_code=out.territorial_unit.code if out.territorial_unit else None,
        facts={
            **out.facts.model_dump(mode="json"),
            "matched_rule_item": out.matched_rule.item if out.matched_rule else None,
        },
        explanation=out.explanation,
    )
    session.add(row)
    session.flush()
    return row


def _unit_briefs(session: Session, codes: Iterable[str]) -> dict[str, UnitBrief]:
    rows = session.execute(
        select(Unit.code, Unit.name, Unit.kind).where(Unit.code.in_(sorted(set(codes))))
    )
    return {code: UnitBrief(code=code, name=name, kind=kind) for code, name, kind in rows}


def _unit_codes(row: Any) -> list[str]:
    territorial = [row.territorial_unit_code] if row.territorial_unit_code else []
    return [*row.lead_unit_codes, *row.cooperating_unit_codes, *territorial]


def _proposal(
    row: Any, units: Mapping[str, UnitBrief], rule_set: tuple[int, str] | None
) -> RoutingProposal:
    """A stored decision (an ORM row, or `_PROPOSALS`'s) as it was made (units by their
    current names); `rule_set`: the rule set's version and name."""
    item = row.facts.get("matched_rule_item")
    return RoutingProposal(
        id=row.id,
        decided_at=row.decided_at,
        rule_set_version=rule_set[0] if rule_set else None,
        rule_set_name=rule_set[1] if rule_set else None,
        basis=row.basis,
        matched_rule=MatchedRule(id=row.matched_rule_id, item=item)
        if row.matched_rule_id
        else None,
        lead_units=[units[c] for c in row.lead_unit_codes],
        cooperating_units=[units[c] for c in row.cooperating_unit_codes],
        territorial_unit=units.get(row.territorial_unit_code or ""),
        explanation=row.explanation,
    )


def proposals(
    session: Session, settings: Settings, decision_ids: Collection[int]
) -> dict[int, RoutingProposal]:
    """Stored decisions by id, in three queries however many (a queue page's)."""
    if not decision_ids:
        return {}
    rows = session.execute(_PROPOSALS, {"ids": sorted(decision_ids)}).all()
    units = _unit_briefs(session, (c for row in rows for c in _unit_codes(row)))
    return {
        row.id: _proposal(row, units, (row.rule_set_version, row.rule_set_name)
                          if row.rule_set_version is not None else None)
        for row in rows
    }  # fmt: skip


#: What a proposal shows of stored decisions, read as rows (every step's answer shows its
#: case's): not the point nor the rule set's document; the rule set's name and version.
_PROPOSALS = (
    select(RoutingDecision.id, RoutingDecision.decided_at, RoutingDecision.basis,
           RoutingDecision.matched_rule_id, RoutingDecision.lead_unit_codes,
           RoutingDecision.cooperating_unit_codes, RoutingDecision.territorial_unit_code,
           RoutingDecision.facts, RoutingDecision.explanation,
           RuleSet.version.label("rule_set_version"), RuleSet.name.label("rule_set_name"))
    .outerjoin(RuleSet, RuleSet.id == RoutingDecision.rule_set_id)
    .where(RoutingDecision.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip


def decision_out(session: Session, settings: Settings, row: RoutingDecision) -> RoutingDecisionOut:
    """A stored decision with the facts it looked at."""
    rule_set = (row.rule_set.version, row.rule_set.name) if row.rule_set else None
    proposal = _proposal(row, _unit_briefs(session, _unit_codes(row)), rule_set)
    facts = {k: v for k, v in row.facts.items() if k != "matched_rule_item"}
    return RoutingDecisionOut(
        **dict(proposal),
        category_code=row.category_code,
        facts=RoutingFacts.model_validate(facts),
    )


def get_decision(
    session: Session, principal: Principal, settings: Settings, decision_id: int
) -> RoutingDecisionOut:
    principal.require(Permission.ROUTING_READ)
    row = session.get(RoutingDecision, decision_id)
    if row is None:
        raise NotFound("分拨记录不存在")
    principal.require_path(row.jurisdiction_path, "分拨记录")
    return decision_out(session, settings, row)
