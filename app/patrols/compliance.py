"""Patrol duty compliance (巡查履职): did each chief patrol as often as their level
requires, over a range of days, and which days or weeks fell short.

A day counts for a chief and a segment when a patrol by that chief, started that local day,
covered the segment completely. A duty of scope `each` is judged per segment; one of scope
`any` per chief, a day counting when any of their segments was covered completely. Daily
duties count working days (the working calendar); weekly duties count weeks Monday to
Sunday that overlap the range. The day or week still running is judged only once it is met
(`calendar.service.judged_periods`, the rule shop visits follow too).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.accounts.models import SegmentChief, User
from app.accounts.service import overseen_users
from app.calendar.service import BadDateRange as BadDateRange  # the routers list it
from app.calendar.service import (
    Period,
    judged_periods,
    local_days,
    met_share,
    week_periods,
    working_calendar,
)
from app.core.moments import local_today, to_local
from app.patrols.models import Patrol, PatrolSegment
from app.patrols.schemas import ComplianceOut, DutyCompliance, MissedPeriod, StreetCompliance
from app.patrols.settings import PatrolDuty
from app.territory.models import Jurisdiction, RoadSegment

if TYPE_CHECKING:
    from app.settings import Settings


def compliance(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    date_from: date,
    date_to: date,
    username: str | None,
    segment_code: str | None,
    street_code: str | None,
) -> ComplianceOut:
    principal.require(Permission.PATROLS_READ)
    start, end = local_days(settings, date_from, date_to)
    duties = settings.patrol_duties
    query = (
        select(SegmentChief, RoadSegment, Jurisdiction.code, User)
        .join(RoadSegment, SegmentChief.segment_id == RoadSegment.id)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .join(User, SegmentChief.user_id == User.id)
        # A duty record is personal data: only of those the caller oversees.
        .where(User.is_active.is_(True), overseen_users(principal))
        .order_by(Jurisdiction.code, SegmentChief.level, User.username, RoadSegment.code)
    )
    if username is not None:
        query = query.where(User.username == username)
    if segment_code is not None:
        query = query.where(RoadSegment.code == segment_code)
    if street_code is not None:
        query = query.where(Jurisdiction.code == street_code)
    assignments = session.execute(query).all()
    patrolled: dict[tuple[int, int], set[date]] = defaultdict(set)
    for user_id, segment_id, started_at in session.execute(
        select(Patrol.user_id, PatrolSegment.segment_id, Patrol.started_at)
        .join(PatrolSegment, PatrolSegment.patrol_id == Patrol.id)
        .where(PatrolSegment.complete.is_(True), Patrol.started_at >= start,
               Patrol.started_at < end)
    ):  # fmt: skip
        patrolled[(user_id, segment_id)].add(to_local(started_at).date())
    calendar = working_calendar(session, settings)
    today = local_today()
    days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    workdays = [(d, d) for d in days if calendar.is_workday(d)]
    weeks = week_periods(date_from, date_to)

    def judge(
        user: User, level: int, duty: PatrolDuty, done: set[date], segment: RoadSegment | None,
        street: str,
    ) -> DutyCompliance:  # fmt: skip
        required = 1 if duty.period == "daily" else duty.days

        def count(period: Period) -> int:
            return sum(1 for d in done if period[0] <= d <= period[1])

        periods = workdays if duty.period == "daily" else weeks
        judged, missed = judged_periods(periods, today, lambda p: count(p) >= required)
        return DutyCompliance(
            username=user.username,
            display_name=user.display_name,
            chief_level=level,
            scope=duty.scope,
            segment_code=segment.code if segment else None,
            segment_name=segment.name if segment else None,
            street_code=street,
            duty="daily" if duty.period == "daily" else f"weekly:{duty.days}",
            periods=len(judged),
            met=len(judged) - len(missed),
            missed=[
                MissedPeriod(start=a, end=b, patrolled_days=count((a, b)), required_days=required)
                for a, b in missed
            ],
            rate=met_share(len(judged) - len(missed), len(judged)),
        )

    rows: list[DutyCompliance] = []
    # any: one duty per chief over all their segments (in the range's filters).
    areas: dict[tuple[int, int], list[tuple[RoadSegment, str]]] = defaultdict(list)
    users: dict[int, User] = {}
    for chief, segment, street, user in assignments:
        duty = duties.get(chief.level)
        if duty is None:
            continue
        if duty.scope == "each":
            done = patrolled[(user.id, segment.id)]
            rows.append(judge(user, chief.level, duty, done, segment, street))
        else:
            areas[(user.id, chief.level)].append((segment, street))
            users[user.id] = user
    for (user_id, level), segments in areas.items():
        done = set().union(*(patrolled[(user_id, s.id)] for s, _ in segments))
        streets = Counter(street for _, street in segments)
        street = min(streets, key=lambda code: (-streets[code], code))  # where most of them lie
        rows.append(judge(users[user_id], level, duties[level], done, None, street))
    rows.sort(key=lambda r: (r.street_code, r.chief_level, r.username, r.segment_code or ""))
    by_street: dict[str, list[DutyCompliance]] = defaultdict(list)
    for row in rows:
        by_street[row.street_code].append(row)
    streets_out = []
    for code, group in sorted(by_street.items()):
        periods = sum(r.periods for r in group)
        met = sum(r.met for r in group)
        streets_out.append(
            StreetCompliance(
                street_code=code, duties=len(group), periods=periods, met=met,
                rate=met_share(met, periods),
            )
        )  # fmt: skip
    return ComplianceOut(date_from=date_from, date_to=date_to, duties=rows, streets=streets_out)


def coverage_map(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    date_from: date,
    date_to: date,
    street_code: str | None,
) -> dict[str, Any]:
    """Every road segment in sight, coloured by how it was patrolled over the days asked:
    `complete` (at least one complete patrol), `partial` (walked, never wholly), `none`."""
    principal.require(Permission.PATROLS_READ)
    start, end = local_days(settings, date_from, date_to)
    walked = (
        select(
            PatrolSegment.segment_id,
            func.count(distinct(Patrol.id)).filter(PatrolSegment.complete.is_(True)),
            func.max(PatrolSegment.covered_share),
        )
        .join(Patrol, PatrolSegment.patrol_id == Patrol.id)
        .where(Patrol.started_at >= start, Patrol.started_at < end)
        .group_by(PatrolSegment.segment_id)
        .subquery()
    )
    query = (
        select(RoadSegment, Jurisdiction.code, walked.c[1], walked.c[2])
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .outerjoin(walked, walked.c.segment_id == RoadSegment.id)
        .where(principal.path_filter(Jurisdiction.path))
        .order_by(RoadSegment.code)
    )
    if street_code is not None:
        query = query.where(Jurisdiction.code == street_code)
    features = []
    for segment, street, complete, best in session.execute(query).all():
        state = "complete" if complete else ("partial" if best else "none")
        features.append({
            "type": "Feature",
            "geometry": mapping(to_shape(segment.geom)),
            "properties": {
                "segment_code": segment.code, "name": segment.name, "grade": segment.grade.value,
                "street_code": street, "complete_patrols": complete or 0,
                "best_share": best or 0.0, "coverage": state,
            },
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}
