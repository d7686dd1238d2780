"""Assessors' and leaders' pages (考核评价): KPIs, rankings, the bulletin, exports, the
heat map, patrol coverage and inspection scores."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.access.rules import Principal
from app.assessment import inspections, rankings, search
from app.assessment import kpis as kpi_table
from app.assessment import service as assessment
from app.console.deps import Me, console_router
from app.console.pages import (
    COVERAGE_COLOURS,
    COVERAGE_ZH,
    GRADE_ZH,
    HEAT_LEGEND,
    HEAT_RAMP,
    heat_step,
    map_geometry,
    render,
)
from app.console.session import PREFIX
from app.core.deps import SessionDep, SettingsDep
from app.patrols import compliance

if TYPE_CHECKING:
    from app.settings import Settings

router = console_router()


KPI_DIMENSIONS = {"street": "街道", "unit": "部门", "category": "类别", "community": "社区"}


def _this_month(settings: Settings) -> tuple[date, date]:
    today = datetime.now(settings.zone).date()
    first = today.replace(day=1)
    return first, today


@router.get("/kpis")
def kpis_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    by: Annotated[Literal["street", "unit", "category", "community"], Query()] = "street",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """KPIs of a period by street, unit or category (考核指标), with their formulas."""
    first, last = _this_month(settings)
    report = assessment.kpis(
        session, settings, me, by=by, date_from=date_from or first, date_to=date_to or last
    )
    weights = settings.assessment_weights
    definitions = [
        (code, name, formula, better, weights.get(code))
        for code, name, formula, better in kpi_table.definitions()
    ]
    span = {"from": report.date_from.isoformat(), "to": report.date_to.isoformat()}
    return render(
        request, settings, "kpis.html", me, report=report, by=by, dimensions=KPI_DIMENSIONS,
        definitions=definitions, names={c: n for c, n, *_ in definitions}, span=span,
        exports={fmt: f"{PREFIX}/exports/cases.{fmt}?{urlencode(span)}" for fmt in EXPORTS},
        score_formula=kpi_table.SCORE, period_rule=kpi_table.PERIOD,
    )  # fmt: skip


def _default_period(settings: Settings) -> str:
    return datetime.now(settings.zone).strftime("%Y-%m")


@router.get("/rankings")
def rankings_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    kind: Annotated[Literal["street", "unit"], Query()] = "street",
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """月排名 / 周通报 with red and black flags."""
    board = rankings.ranking(
        session, settings, me, kind=kind, period=period or _default_period(settings)
    )
    return render(request, settings, "rankings.html", me, board=board, kind=kind)


@router.get("/bulletin")
def bulletin_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The printable bulletin (月排名通报 / 周通报): both rankings and the district's score."""
    label = period or _default_period(settings)
    boards = [
        rankings.ranking(session, settings, me, kind=kind, period=label)
        for kind in ("street", "unit")
    ]
    district = rankings.district_score(session, settings, me, period=label)
    return render(
        request, settings, "bulletin.html", me, boards=boards, district=district, period=label,
        printed=datetime.now(settings.zone),
    )  # fmt: skip


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", search.export_csv),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        search.export_xlsx,
    ),
}


@router.get("/exports/cases.{fmt}")
def export_cases(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    fmt: Literal["csv", "xlsx"],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
) -> Response:
    """The assessment export of the API (`/api/v1/assessment/cases/export.*`) for the
    browser's session."""
    media_type, export = EXPORTS[fmt]
    filters = search.CaseFilter.model_validate({"from": date_from, "to": date_to})
    body = export(session, settings, me, filters)
    name = f"cases-{date_from:%Y%m%d}-{date_to:%Y%m%d}.{fmt}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- assessors: the heat map, patrol coverage, inspection scores ------------------------------

HEAT_LEVELS = {"grid_cell": "万米单元格", "segment": "路段"}


def _span(settings: Settings, date_from: date | None, date_to: date | None) -> dict[str, str]:
    first, last = _this_month(settings)
    return {"from": (date_from or first).isoformat(), "to": (date_to or last).isoformat()}


@router.get("/heatmap")
def heatmap_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    level: Annotated[Literal["grid_cell", "segment"], Query()] = "grid_cell",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Cases per grid cell or segment (案件热力图) over the territory, with the busiest
    listed beside the map (the numbers, for those who do not read colours)."""
    span = _span(settings, date_from, date_to)
    heat = _heat(session, settings, me, level, span)
    query = urlencode({"level": level, **span})
    return render(
        request, settings, "heatmap.html", me, heat=heat, level=level, levels=HEAT_LEVELS,
        span=span, src=f"{PREFIX}/heatmap.geojson?{query}", legend=HEAT_LEGEND,
    )  # fmt: skip


def _heat(
    session: Any, settings: Settings, me: Principal, level: str, span: dict[str, str]
) -> dict[str, Any]:
    filters = search.CaseFilter.model_validate(span)
    heat = search.heatmap(session, settings, me, filters, level)  # type: ignore[arg-type]
    for feature in heat["features"]:
        cases = feature["properties"]["cases"]
        feature["geometry"] = map_geometry(settings, feature["geometry"])
        step = heat_step(cases, heat["max_cases"])
        feature["properties"].update(
            layer="heat", step=step, color=HEAT_RAMP[step],
            label=f"{feature['id']}：{cases} 件",
        )  # fmt: skip
    return heat


@router.get("/heatmap.geojson")
def heatmap_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    level: Annotated[Literal["grid_cell", "segment"], Query()] = "grid_cell",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """`assessment.search.heatmap` (as `GET /api/v1/assessment/heatmap`), each feature
    coloured and in the datum of the configured tiles."""
    return JSONResponse(_heat(session, settings, me, level, _span(settings, date_from, date_to)))


def _week(settings: Settings) -> dict[str, str]:
    today = datetime.now(settings.zone).date()
    return {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}


def _coverage(
    session: Any, settings: Settings, me: Principal, span: dict[str, str], street: str | None
) -> dict[str, Any]:
    found = compliance.coverage_map(
        session, settings, me, date_from=date.fromisoformat(span["from"]),
        date_to=date.fromisoformat(span["to"]), street_code=street,
    )  # fmt: skip
    for feature in found["features"]:
        facts = feature["properties"]
        feature["geometry"] = map_geometry(settings, feature["geometry"])
        facts.update(
            layer="coverage", color=COVERAGE_COLOURS[facts["coverage"]],
            label=f"{facts['name']}：{COVERAGE_ZH[facts['coverage']]}",
        )  # fmt: skip
    return found


@router.get("/coverage")
def coverage_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Segments coloured by patrol coverage over the days asked (巡查覆盖图), from
    `patrols.compliance.coverage_map` as the API; the last seven days by default."""
    span = _week(settings)
    if date_from or date_to:
        span = {"from": (date_from or date_to).isoformat(),  # type: ignore[union-attr]
                "to": (date_to or date_from).isoformat()}  # type: ignore[union-attr]  # fmt: skip
    found = _coverage(session, settings, me, span, street or None)
    tally = Counter(f["properties"]["coverage"] for f in found["features"])
    query = urlencode({**span, **({"street": street} if street else {})})
    return render(
        request, settings, "coverage.html", me, found=found, span=span, street=street or "",
        tally=tally, src=f"{PREFIX}/coverage.geojson?{query}", coverage_zh=COVERAGE_ZH,
        colours=COVERAGE_COLOURS,
    )  # fmt: skip


@router.get("/coverage.geojson")
def coverage_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    street: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    span = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    return JSONResponse(_coverage(session, settings, me, span, street or None))


INSPECTION_DIMENSIONS = {"segment": "路段", "street": "街道", "unit": "部门"}


@router.get("/inspections")
def inspections_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    by: Annotated[Literal["segment", "street", "unit"], Query()] = "segment",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Field-inspection scores (实地考评得分) per segment with its 千百十 grade, per street
    or per department, as `GET /api/v1/assessment/inspection-scores`."""
    span = _span(settings, date_from, date_to)
    scores = inspections.inspection_scores(
        session, settings, me, by=by,
        period=assessment.period_of(
            settings, date.fromisoformat(span["from"]), date.fromisoformat(span["to"])
        ),
    )  # fmt: skip
    return render(
        request, settings, "inspections.html", me, scores=scores, by=by, span=span,
        dimensions=INSPECTION_DIMENSIONS, grades=GRADE_ZH,
    )  # fmt: skip
