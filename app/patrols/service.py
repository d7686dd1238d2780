"""Patrols: start, take fixes (in any order, resent, late), pause, end; then the track,
its length and time, and the segments it covered."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import LineString
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal, SignedIn
from app.accounts.models import User
from app.accounts.service import oversees_user
from app.core.database import UTCDateTime, bbox_intersects, rows_changed, utcnow
from app.core.errors import NotFound, Problem
from app.core.idempotency import Idempotent, run_idempotent
from app.core.moments import to_local
from app.core.pagination import Keyset
from app.patrols.models import (
    FixFlag,
    OutOfWindow,
    Patrol,
    PatrolFix,
    PatrolReport,
    PatrolSegment,
    PatrolStatus,
)
from app.patrols.schemas import (
    MAX_FIXES_PER_BATCH,
    FixBatch,
    FixBatchResult,
    FixIn,
    PatrolOut,
    PatrolStart,
    PatrolSummary,
    SegmentCoverageOut,
    SegmentPatrolOut,
)
from app.patrols.track import (
    Coverage,
    RawFix,
    coverage,
    drop_impossible_jumps,
    length_m,
    track_of,
)
from app.territory.locator import wgs84_in_area
from app.territory.models import RoadSegment
from app.territory.service import in_sight

if TYPE_CHECKING:
    from app.settings import Settings

#: How far a track's box is widened to find the segments it may cover.
_SEARCH_SLACK_DEG = 0.001

#: A user's patrols, newest start first.
NEWEST_FIRST = Keyset(Patrol.started_at, Patrol.id, descending=True)


class PatrolInProgress(Problem):
    code = "patrol_in_progress"
    status = 409
    title = "您有一次巡查尚未结束"


class StartTooOld(Problem):
    code = "start_too_old"
    status = 422
    title = "巡查开始时间太早"


class NotYourPatrol(Problem):
    code = "not_your_patrol"
    status = 403
    title = "只能记录自己的巡查"


class PatrolEnded(Problem):
    code = "patrol_ended"
    status = 409
    title = "巡查已结束"


class PatrolNotActive(Problem):
    code = "patrol_not_active"
    status = 409
    title = "巡查不在进行中"


class PatrolMismatch(Problem):
    code = "patrol_mismatch"
    status = 422
    title = "该巡查不是您的，或时间不在巡查期间"


def check_patrol(
    session: Session, settings: Settings, principal: Principal, patrol_id: int, at: datetime
) -> Patrol:
    """The caller's patrol that `at` falls in (with the clock slack and the late-fix grace
    of an offline phone); 422 otherwise."""
    patrol = session.get(Patrol, patrol_id)
    skew = timedelta(minutes=settings.device_clock_skew_minutes)
    grace = timedelta(minutes=settings.patrol_fix_grace_minutes)
    if (
        patrol is None
        or patrol.user_id != principal.user_id
        or at < patrol.started_at - skew
        or (patrol.ended_at is not None and at > patrol.ended_at + grace)
    ):
        raise PatrolMismatch(
            f"巡查 {patrol_id} 不是您的，或时间不在该巡查期间", patrol_id=patrol_id
        )
    return patrol


def link_report(
    session: Session, settings: Settings, principal: Principal, patrol_id: int,
    report_id: int, device_time: datetime,
) -> None:  # fmt: skip
    """Attach a report to the reporter's patrol it was made during."""
    check_patrol(session, settings, principal, patrol_id, device_time)
    session.add(PatrolReport(report_id=report_id, patrol_id=patrol_id))


class InvalidFix(Problem):
    code = "invalid_fix"
    status = 422
    title = "定位点无效"


class TooManyFixes(Problem):
    code = "too_many_fixes"
    status = 422
    title = "定位点过多"


def _load(session: Session, patrol_id: int, *, lock: bool = False) -> Patrol:
    query = select(Patrol).where(Patrol.id == patrol_id)
    patrol = session.scalar(query.with_for_update() if lock else query)
    if patrol is None:
        raise NotFound("巡查不存在")
    return patrol


def _own(session: Session, principal: Principal, patrol_id: int) -> Patrol:
    """The caller's own patrol, locked for the change."""
    principal.require(Permission.PATROLS_RECORD)
    patrol = _load(session, patrol_id, lock=True)
    if patrol.user_id != principal.user_id:
        raise NotYourPatrol("这不是您的巡查")
    return patrol


def start_patrol(
    session: Session,
    settings: Settings,
    principal: SignedIn,
    body: PatrolStart,
    idempotency_key: str | None,
) -> Idempotent[PatrolOut]:
    """Begin a patrol; a retried start answers with the first. One patrol at a time."""
    principal.require(Permission.PATROLS_RECORD)

    def create() -> PatrolOut:
        running = session.scalar(
            select(Patrol.id).where(
                Patrol.user_id == principal.user_id,
                Patrol.status.in_([PatrolStatus.ACTIVE, PatrolStatus.PAUSED]),
            )
        )
        if running is not None:
            raise PatrolInProgress(f"巡查 {running} 尚未结束，请先结束它", patrol_id=running)
        now = utcnow()
        started = min(body.started_at or now, now)
        # Evidence: a patrol cannot be dated back beyond an offline phone's plausible delay.
        if started < now - timedelta(hours=settings.patrol_offline_start_hours):
            raise StartTooOld(
                f"巡查开始时间不能早于 {settings.patrol_offline_start_hours:g} 小时之前"
            )
        patrol = Patrol(
            user_id=principal.user_id, status=PatrolStatus.ACTIVE, started_at=started, fix_count=0
        )
        session.add(patrol)
        session.flush()
        return patrol_out(session, settings, patrol)

    return run_idempotent(session, principal.ref, "patrols.start", idempotency_key, body, create)


def _out_of_window(
    settings: Settings, patrol: Patrol, recorded_at: datetime, now: datetime
) -> OutOfWindow | None:
    """Why a fix cannot belong to the patrol, if it cannot (it is refused, not stored)."""
    skew = timedelta(minutes=settings.device_clock_skew_minutes)
    if recorded_at > now + skew:
        return OutOfWindow.CLOCK_AHEAD
    if recorded_at < patrol.started_at - skew:
        return OutOfWindow.BEFORE_START
    if patrol.ended_at is not None and recorded_at > patrol.ended_at:
        return OutOfWindow.AFTER_END
    return None


def _flag(settings: Settings, accuracy: float | None) -> FixFlag | None:
    if accuracy is not None and accuracy > settings.patrol_max_accuracy_m:
        return FixFlag.POOR_ACCURACY
    return None


def _minutes_lasted(patrol: Patrol, now: datetime) -> float:
    return max(0.0, ((patrol.ended_at or now) - patrol.started_at).total_seconds() / 60)


def max_fixes(settings: Settings, patrol: Patrol, now: datetime) -> int:
    """How many fixes the patrol may hold: so many a minute it has lasted, plus a batch.
    What one patrol can store, and so what measuring it costs, grows only with its time."""
    lasted = _minutes_lasted(patrol, now)
    return int(lasted * settings.patrol_max_fixes_per_minute) + MAX_FIXES_PER_BATCH


def append_fixes(
    session: Session, settings: Settings, principal: Principal, patrol_id: int, batch: FixBatch
) -> FixBatchResult:
    """Store a batch of fixes: any order, resent ones ignored, each flagged if it cannot be
    trusted, those outside the patrol's time refused. A bad coordinate, or more fixes than
    the patrol's time allows, refuses the whole batch (nothing stored). Late fixes of an
    ended patrol mark it for measuring again (`remeasure_due`)."""
    patrol = _own(session, principal, patrol_id)
    now = utcnow()
    if patrol.ended_at is not None and now > patrol.ended_at + timedelta(
        minutes=settings.patrol_fix_grace_minutes
    ):
        raise PatrolEnded(f"巡查已于 {to_local(patrol.ended_at):%H:%M} 结束，不再接收定位点")
    points = []
    for i, fix in enumerate(batch.fixes):
        try:
            points.append(wgs84_in_area(settings, fix))
        except Problem as problem:
            raise InvalidFix(f"第 {i + 1} 个定位点：{problem.detail}", index=i,
                             reason=problem.code) from None  # fmt: skip
    fixes: dict[datetime, tuple[FixIn, float, float]] = {}
    refused: Counter[OutOfWindow] = Counter()
    for fix, (lon, lat) in zip(batch.fixes, points, strict=True):
        reason = _out_of_window(settings, patrol, fix.recorded_at, now)
        if reason is not None:
            refused[reason] += 1
        else:
            fixes.setdefault(fix.recorded_at, (fix, lon, lat))
    flags = {moment: _flag(settings, fix.accuracy_m) for moment, (fix, _, _) in fixes.items()}
    new = _store_fixes(session, patrol.id, now, fixes, flags) if fixes else set()
    limit = max_fixes(settings, patrol, now)
    if patrol.fix_count + len(new) > limit:
        refusal = TooManyFixes(
            f"这次巡查进行了 {_minutes_lasted(patrol, now):.0f} 分钟，最多保存 {limit} 个定位点，"
            f"已有 {patrol.fix_count} 个", limit=limit, stored=patrol.fix_count,
        )  # fmt: skip
        session.rollback()
        raise refusal
    if new:
        patrol.fix_count = Patrol.fix_count + len(new)  # in SQL: batches may race
        if patrol.status is PatrolStatus.ENDED:
            # Late fixes of an offline queue join the track, measured later: a big patrol
            # takes seconds to measure, which must not hold the phone nor other writers.
            patrol.remeasure_requested_at = now
    session.commit()
    flagged = Counter(flags[moment] for moment in new if flags[moment] is not None)
    return FixBatchResult(
        accepted=len(new),
        duplicates=len(batch.fixes) - len(new) - refused.total(),
        flagged={flag: flagged.get(flag, 0) for flag in FixFlag},
        refused={reason: refused.get(reason, 0) for reason in OutOfWindow},
    )


#: On PostgreSQL a batch goes as one array per column: the statement's text is the same
#: for every batch, so the driver parses it once (a multi-row VALUES list of 50 fixes is
#: 350 parameters, re-parsed on every call: a quarter of a worker's time under load).
_PG_STORE_FIXES = text("""
    INSERT INTO patrol_fixes
        (patrol_id, recorded_at, received_at, geom, accuracy_m, coordinate_system, flag)
    SELECT :patrol_id, f.recorded_at, :received_at, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326),
           f.accuracy_m, f.coordinate_system, f.flag
    FROM unnest(CAST(:recorded_at AS timestamptz[]), CAST(:lon AS float8[]),
                CAST(:lat AS float8[]), CAST(:accuracy_m AS float8[]),
                CAST(:coordinate_system AS text[]), CAST(:flag AS text[]))
         AS f(recorded_at, lon, lat, accuracy_m, coordinate_system, flag)
    ON CONFLICT (patrol_id, recorded_at) DO NOTHING
    RETURNING recorded_at
""").columns(recorded_at=UTCDateTime())


def _store_fixes(
    session: Session,
    patrol_id: int,
    now: datetime,
    fixes: dict[datetime, tuple[FixIn, float, float]],
    flags: dict[datetime, FixFlag | None],
) -> set[datetime]:
    """Insert the fixes not stored yet; the moments of those that were new. Fixes already
    stored (a resent batch) are skipped by the database in the same round trip."""
    if session.get_bind().dialect.name == "postgresql":
        values = list(fixes.values())
        return set(session.scalars(_PG_STORE_FIXES, {
            "patrol_id": patrol_id, "received_at": now,
            "recorded_at": [f.recorded_at.astimezone(UTC) for f, _, _ in values],
            "lon": [lon for _, lon, _ in values], "lat": [lat for _, _, lat in values],
            "accuracy_m": [f.accuracy_m for f, _, _ in values],
            "coordinate_system": [f.coordinate_system.value for f, _, _ in values],
            "flag": [flag.value if (flag := flags[m]) else None for m in fixes],
        }))  # fmt: skip
    rows = [
        {"patrol_id": patrol_id, "recorded_at": moment, "received_at": now,
         "geom": f"SRID=4326;POINT({lon!r} {lat!r})", "accuracy_m": fix.accuracy_m,
         "coordinate_system": fix.coordinate_system, "flag": flags[moment]}
        for moment, (fix, lon, lat) in fixes.items()
    ]  # fmt: skip
    return set(
        session.scalars(
            sqlite_insert(PatrolFix)
            .on_conflict_do_nothing(index_elements=["patrol_id", "recorded_at"])
            .returning(PatrolFix.recorded_at),
            rows,
        )
    )


def pause_patrol(
    session: Session, settings: Settings, principal: Principal, patrol_id: int
) -> PatrolOut:
    patrol = _own(session, principal, patrol_id)
    if patrol.status is not PatrolStatus.ACTIVE:
        raise PatrolNotActive(f"巡查为“{patrol.status.value}”，不能暂停")
    patrol.status, patrol.paused_at = PatrolStatus.PAUSED, utcnow()
    session.commit()
    return patrol_out(session, settings, patrol)


def resume_patrol(
    session: Session, settings: Settings, principal: Principal, patrol_id: int
) -> PatrolOut:
    patrol = _own(session, principal, patrol_id)
    if patrol.status is not PatrolStatus.PAUSED or patrol.paused_at is None:
        raise PatrolNotActive(f"巡查为“{patrol.status.value}”，不能继续")
    patrol.paused_s += (utcnow() - patrol.paused_at).total_seconds()
    patrol.status, patrol.paused_at = PatrolStatus.ACTIVE, None
    session.commit()
    return patrol_out(session, settings, patrol)


def end_patrol(
    session: Session, settings: Settings, principal: Principal, patrol_id: int
) -> PatrolOut:
    """End the patrol and measure it: the cleaned track, its length and time, coverage."""
    patrol = _own(session, principal, patrol_id)
    if patrol.status is PatrolStatus.ENDED:
        assert patrol.ended_at is not None
        raise PatrolEnded(f"巡查已于 {to_local(patrol.ended_at):%H:%M} 结束")
    now = utcnow()
    if patrol.paused_at is not None:
        patrol.paused_s += (now - patrol.paused_at).total_seconds()
        patrol.paused_at = None
    patrol.status, patrol.ended_at = PatrolStatus.ENDED, now
    # Fixes sent after the end but recorded before it were flagged AFTER_END by nobody:
    # the end is now known, so later ones are.
    session.execute(
        update(PatrolFix)
        .where(PatrolFix.patrol_id == patrol.id, PatrolFix.recorded_at > now,
               PatrolFix.flag.is_(None))
        .values(flag=FixFlag.AFTER_END)
    )  # fmt: skip
    _store_measures(session, patrol, _measure(session, settings, patrol))
    session.commit()
    return patrol_out(session, settings, patrol)


@dataclass
class Measures:
    """What measuring an ended patrol found, before it is stored."""

    jumps: list[int]
    track: LineString | None
    kept_fix_count: int
    coverage: list[Coverage]


def _measure(session: Session, settings: Settings, patrol: Patrol) -> Measures:
    """Measure an ended patrol from all its fixes (reads only)."""
    rows = session.execute(
        select(PatrolFix.id, PatrolFix.recorded_at, PatrolFix.geom, PatrolFix.flag)
        .where(PatrolFix.patrol_id == patrol.id)
        .order_by(PatrolFix.recorded_at)
    ).all()
    fixes = []
    for _, recorded_at, geom, flag in rows:
        point = to_shape(geom)
        # Jumps are judged afresh each time: a late fix may change which one is the jump.
        again = None if flag is FixFlag.IMPOSSIBLE_SPEED else flag
        fixes.append(RawFix(recorded_at, point.x, point.y, again))
    drop_impossible_jumps(fixes, settings.patrol_max_speed_mps)
    jumps = [row.id for row, fix in zip(rows, fixes, strict=True)
             if fix.flag is FixFlag.IMPOSSIBLE_SPEED]  # fmt: skip
    track = track_of(fixes)
    kept = sum(f.flag is None for f in fixes)
    if track is None:
        return Measures(jumps, None, kept, [])
    lon0, lat0, lon1, lat1 = track.bounds
    slack = _SEARCH_SLACK_DEG
    candidates = session.execute(
        select(RoadSegment.id, func.ST_AsBinary(RoadSegment.geom, type_=None)).where(
            bbox_intersects(
                RoadSegment.geom, lon0 - slack, lat0 - slack, lon1 + slack, lat1 + slack
            )
        )
    ).all()
    segments = list(
        zip(
            [i for i, _ in candidates],
            shapely.from_wkb([bytes(w) for _, w in candidates]),
            strict=True,
        )
    )
    covered = coverage(
        track, segments, settings.patrol_coverage_buffer_m, settings.patrol_complete_share
    )
    return Measures(jumps, track, kept, covered)


def _store_measures(session: Session, patrol: Patrol, measures: Measures) -> None:
    session.execute(
        update(PatrolFix)
        .where(PatrolFix.patrol_id == patrol.id, PatrolFix.flag == FixFlag.IMPOSSIBLE_SPEED)
        .values(flag=None)
    )
    if measures.jumps:
        session.execute(
            update(PatrolFix)
            .where(PatrolFix.id.in_(measures.jumps))
            .values(flag=FixFlag.IMPOSSIBLE_SPEED)
        )
    assert patrol.ended_at is not None
    track = measures.track
    patrol.track = from_shape(track, srid=4326) if track is not None else None
    patrol.distance_m = length_m(track)
    patrol.duration_s = round(
        max(0.0, (patrol.ended_at - patrol.started_at).total_seconds() - patrol.paused_s), 1
    )
    patrol.kept_fix_count = measures.kept_fix_count
    session.execute(delete(PatrolSegment).where(PatrolSegment.patrol_id == patrol.id))
    for c in measures.coverage:
        session.add(
            PatrolSegment(
                patrol_id=patrol.id,
                segment_id=c.segment_id,
                length_m=c.length_m,
                covered_m=c.covered_m,
                covered_share=c.share,
                complete=c.complete,
                covered=from_shape(c.covered, srid=4326) if c.covered is not None else None,
            )
        )


def remeasure_due(session: Session, settings: Settings, *, limit: int = 50) -> int:
    """Measure again the ended patrols that late fixes reached (a background job): each
    once, however many batches came since. How many were measured.

    Reading and computing happen before anything is written; each result is then stored
    in a short transaction that starts with its claim, so a long measure never holds the
    database's writers back (give it a read-only session), and a patrol that got more
    fixes meanwhile keeps its mark for the next run.
    """
    due = session.execute(
        select(Patrol.id, Patrol.remeasure_requested_at)
        .where(Patrol.remeasure_requested_at.isnot(None))
        .order_by(Patrol.remeasure_requested_at, Patrol.id)
        .limit(limit)
    ).all()
    measured = 0
    for patrol_id, requested in due:
        patrol = _load(session, patrol_id)
        measures = _measure(session, settings, patrol)
        session.rollback()  # end the read: the write below starts its own transaction
        claimed = rows_changed(
            session.execute(
                update(Patrol)
                .where(Patrol.id == patrol_id, Patrol.remeasure_requested_at == requested)
                .values(remeasure_requested_at=None)
            )
        )
        if claimed != 1:
            session.rollback()  # more fixes came (or another worker did it)
            continue
        _store_measures(session, _load(session, patrol_id), measures)
        session.commit()
        measured += 1
    return measured


def my_patrols(
    session: Session,
    principal: SignedIn,
    *,
    status: PatrolStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[PatrolSummary], str | None]:
    """The caller's own patrols, newest start first: a phone that lost a patrol's id finds
    the running one here (`status=active`)."""
    principal.require(Permission.PATROLS_RECORD)
    query = select(Patrol).where(Patrol.user_id == principal.user_id)
    if status is not None:
        query = query.where(Patrol.status == status)
    patrols, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    return [_summary(p) for p in patrols], next_cursor


def _summary(patrol: Patrol) -> PatrolSummary:
    return PatrolSummary.model_validate(patrol)


def _visible(session: Session, principal: Principal, patrol_id: int) -> Patrol:
    """The patrol, if it is the caller's or the caller oversees its walker: a GPS track is
    personal data (`oversees_user`)."""
    principal.require(Permission.PATROLS_READ)
    patrol = _load(session, patrol_id)
    if not oversees_user(session, principal, patrol.user_id):
        raise NotFound("巡查不存在")
    return patrol


def get_patrol(
    session: Session, settings: Settings, principal: Principal, patrol_id: int
) -> PatrolOut:
    return patrol_out(session, settings, _visible(session, principal, patrol_id))


def patrol_out(session: Session, settings: Settings, patrol: Patrol) -> PatrolOut:
    flags = dict(
        session.execute(
            select(PatrolFix.flag, func.count())
            .where(PatrolFix.patrol_id == patrol.id, PatrolFix.flag.isnot(None))
            .group_by(PatrolFix.flag)
        ).all()
    )
    segments = session.execute(
        select(PatrolSegment, RoadSegment.code, RoadSegment.name)
        .join(RoadSegment, PatrolSegment.segment_id == RoadSegment.id)
        .where(PatrolSegment.patrol_id == patrol.id)
        .order_by(PatrolSegment.covered_share.desc(), RoadSegment.code)
    ).all()
    return PatrolOut(
        **dict(_summary(patrol)),
        user_id=patrol.user_id,
        report_ids=list(
            session.scalars(
                select(PatrolReport.report_id)
                .where(PatrolReport.patrol_id == patrol.id)
                .order_by(PatrolReport.report_id)
            )
        ),
        kept_fix_count=patrol.kept_fix_count,
        flagged={flag: flags.get(flag, 0) for flag in FixFlag},
        segments=[
            SegmentCoverageOut(
                segment_code=code,
                segment_name=name,
                length_m=s.length_m,
                covered_m=s.covered_m,
                covered_share=s.covered_share,
                complete=s.complete,
            )
            for s, code, name in segments
        ],
    )


def patrol_geojson(
    session: Session, settings: Settings, principal: Principal, patrol_id: int
) -> dict[str, Any]:
    """The track and the covered parts of segments, as a GeoJSON FeatureCollection."""
    patrol = _visible(session, principal, patrol_id)
    features: list[dict[str, Any]] = []
    if patrol.track is not None:
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(to_shape(patrol.track)),
            "properties": {"kind": "track", "patrol_id": patrol.id,
                           "distance_m": patrol.distance_m},
        })  # fmt: skip
    for row, code in session.execute(
        select(PatrolSegment, RoadSegment.code)
        .join(RoadSegment, PatrolSegment.segment_id == RoadSegment.id)
        .where(PatrolSegment.patrol_id == patrol.id, PatrolSegment.covered.isnot(None))
        .order_by(RoadSegment.code)
    ).all():
        assert row.covered is not None  # the query's filter
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(to_shape(row.covered)),
            "properties": {"kind": "covered", "segment_code": code,
                           "covered_share": row.covered_share, "complete": row.complete},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def segment_patrols(
    session: Session, settings: Settings, principal: Principal, segment_code: str, limit: int
) -> list[SegmentPatrolOut]:
    """Who patrolled a segment the caller may see, when, and how much of it: newest first.

    The segment's record, clipped to it: whoever walked it, without their tracks (those
    are `GET /patrols/{id}`, for whom oversees the walker)."""
    principal.require(Permission.PATROLS_READ)
    segment, _ = in_sight(session, principal, RoadSegment, segment_code, "路段")
    rows = session.execute(
        select(Patrol, PatrolSegment, User)
        .join(PatrolSegment, PatrolSegment.patrol_id == Patrol.id)
        .join(User, Patrol.user_id == User.id)
        .where(PatrolSegment.segment_id == segment.id)
        .order_by(Patrol.started_at.desc(), Patrol.id.desc())
        .limit(limit)
    ).all()
    return [
        SegmentPatrolOut(
            patrol_id=patrol.id,
            user_id=user.id,
            display_name=user.display_name,
            started_at=patrol.started_at,
            ended_at=patrol.ended_at,
            covered_share=ps.covered_share,
            complete=ps.complete,
        )
        for patrol, ps, user in rows
    ]
