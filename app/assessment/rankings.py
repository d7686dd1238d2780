"""Rankings (排名): the weekly bulletin (周通报) and monthly ranking (月排名) of street
offices and of departments, from their case KPIs and inspection scores, with red flags for
the best, black flags for the worst, and a mark for last place two periods running (约谈).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from statistics import fmean
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import SYSTEM, Permission, Principal
from app.assessment import inspections
from app.assessment.kpis import weighted_mean
from app.assessment.schemas import DistrictScore, RankingOut, RankingRow
from app.assessment.service import BadPeriod, kpis, period_of, sees_everything, snapshot
from app.territory.models import Jurisdiction, Unit

if TYPE_CHECKING:
    from app.settings import Settings

Kind = Literal["street", "unit"]
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def period_bounds(label: str) -> tuple[date, date, str]:
    """A month ('2026-11') or ISO week ('2026-W47'): first day, last day, the period before."""
    if m := _MONTH.match(label):
        year, month = int(m[1]), int(m[2])
        if 2000 <= year <= 2999 and 1 <= month <= 12:
            first = date(year, month, 1)
            nxt = date(year + month // 12, month % 12 + 1, 1)
            before = first - timedelta(days=1)
            return first, nxt - timedelta(days=1), f"{before:%Y-%m}"
    if (m := _WEEK.match(label)) and 2000 <= int(m[1]) <= 2999:
        try:
            first = date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError:
            pass
        else:
            iso = (first - timedelta(days=7)).isocalendar()
            return first, first + timedelta(days=6), f"{iso.year}-W{iso.week:02d}"
    raise BadPeriod(f"考核期“{label}”无效：月为 2026-11，周为 2026-W47", period=label)


def ranking(
    session: Session, settings: Settings, principal: Principal, *, kind: Kind, period: str
) -> RankingOut:
    """The ranking of one period; `last_place_twice` compares with the period before. A
    closed period's ranking is the one frozen when it closed (corrections applied). Places
    are always the district's: a reader who sees part of it gets the rows in their sight."""
    principal.require(Permission.CASES_READ)
    if not sees_everything(principal):
        board = ranking(session, settings, SYSTEM, kind=kind, period=period)
        board.rows = [r for r in board.rows if _in_sight(session, principal, kind, r.key)]
        return board
    date_from, date_to, before = period_bounds(period)
    if (frozen := snapshot(session, principal, date_from, date_to, f"ranking:{kind}")) is not None:
        return RankingOut.model_validate(frozen)
    rows = _scored(session, settings, principal, kind, date_from, date_to)
    before_from, before_to, _ = period_bounds(before)
    earlier = snapshot(session, principal, before_from, before_to, f"ranking:{kind}")
    earlier_rows = (
        RankingOut.model_validate(earlier).rows
        if earlier is not None
        else _scored(session, settings, principal, kind, before_from, before_to)
    )
    last_before = [r.key for r in earlier_rows if r.score is not None][-1:]
    span = period_of(settings, date_from, date_to)
    out = RankingOut(
        kind=kind, period=period, date_from=date_from, date_to=date_to,
        complete=span.cutoff == span.end, previous_period=before,
        previous_last=last_before[0] if last_before else None,
        weights=settings.assessment_ranking_weights,
        rows=rows,
    )  # fmt: skip
    place_and_flag(settings, out)
    return out


def _in_sight(session: Session, principal: Principal, kind: Kind, code: str) -> bool:
    """A street office in the reader's scope; a department unless it is a street office
    outside it (as units are listed)."""
    if kind == "street":
        path = session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == code))
    else:
        path = session.scalar(
            select(Jurisdiction.path).join(Unit, Unit.jurisdiction_id == Jurisdiction.id)
            .where(Unit.code == code)
        )  # fmt: skip
    return principal.sees_path(path) if (path is not None or kind == "unit") else False


def place_and_flag(settings: Settings, board: RankingOut) -> None:
    """Rank the rows by score, flag the best red and the worst black (when there are more
    ranked rows than flags), and mark the last if it was last the period before."""
    board.rows.sort(key=lambda r: (r.score is None, -(r.score or 0), r.key))
    ranked = [r for r in board.rows if r.score is not None]
    for place, row in enumerate(board.rows, start=1):
        row.rank = place if row.score is not None else None
        row.flag, row.last_place_twice = None, False
    red, black = settings.assessment_red_flags, settings.assessment_black_flags
    if len(ranked) > red + black:  # too few to flag both ends apart
        for row in ranked[:red]:
            row.flag = "red"
        for row in ranked[len(ranked) - black :]:
            row.flag = "black"
    if ranked and ranked[-1].key == board.previous_last:
        ranked[-1].last_place_twice = True


def _scored(
    session: Session, settings: Settings, principal: Principal, kind: Kind,
    date_from: date, date_to: date,
) -> list[RankingRow]:  # fmt: skip
    weights = settings.assessment_ranking_weights
    report = kpis(session, settings, principal, by=kind, date_from=date_from, date_to=date_to)
    scores = inspections.inspection_scores(
        session, settings, principal, by=kind, period=period_of(settings, date_from, date_to)
    )
    inspected = {r.key: r for r in scores.rows}
    names = {r.key: r.name for r in scores.rows} | {r.key: r.name for r in report.rows}
    cases = {r.key: r for r in report.rows if r.key != "-"}
    rows = []
    for key in sorted(set(cases) | set(inspected)):
        case_row = cases.get(key)
        case_score = case_row.score if case_row is not None and case_row.ranked else None
        if key in inspected:
            inspection_score: float | None = inspected[key].score
        elif kind == "unit" and scores.inspections and case_score is not None:
            # Inspected, and nothing charged to it; this says something of a unit at work,
            # nothing of one without enough work to be scored on.
            inspection_score = 100.0
        else:
            inspection_score = None
        score = weighted_mean([(weights["cases"], case_score),
                               (weights["inspections"], inspection_score)])  # fmt: skip
        rows.append(RankingRow(
            key=key, name=names.get(key, key), case_score=case_score,
            inspection_score=inspection_score, score=score,
            cases=case_row.basis if case_row else 0,
            inspections=inspected[key].inspections if key in inspected else 0,
            rank=None, flag=None, last_place_twice=False,
        ))  # fmt: skip
    rows.sort(key=lambda r: (r.score is None, -(r.score or 0), r.key))
    return rows


def district_score(
    session: Session, settings: Settings, principal: Principal, *, period: str
) -> DistrictScore:
    """The whole district's score: the street offices' mean and the departments' mean,
    weighed by `ROADCHIEF_ASSESSMENT_GROUP_WEIGHTS` (Boshan: 70 / 30)."""
    date_from, date_to, _ = period_bounds(period)
    weights = settings.assessment_group_weights
    means = {}
    kinds: tuple[tuple[Kind, str], ...] = (("street", "streets"), ("unit", "units"))
    for kind, group in kinds:
        scored = [r.score for r in _scored(session, settings, principal, kind, date_from, date_to)
                  if r.score is not None]  # fmt: skip
        means[group] = round(fmean(scored), 2) if scored else None
    total = weighted_mean((weights[g], s) for g, s in means.items())
    return DistrictScore(period=period, weights=weights, streets=means["streets"],
                         units=means["units"], score=total)  # fmt: skip
