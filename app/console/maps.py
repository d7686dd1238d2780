"""The map (地图): the territory in the person's sight and the cases of their scope."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response

from app.access.rules import Permission
from app.assessment import search
from app.console.deps import Me, console_router
from app.console.pages import CASE_STATUS_ZH, map_geometry, on_tiles, render
from app.console.session import PREFIX
from app.core.deps import SessionDep, SettingsDep
from app.territory import service as territory
from app.territory.importer import Layer

if TYPE_CHECKING:
    from app.settings import Settings

router = console_router()


@router.get("/map")
def map_page(
    request: Request,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    span = _recent(settings, date_from, date_to)
    return render(
        request, settings, "map.html", me, span=span,
        cases_src=f"{PREFIX}/map/cases.geojson?{urlencode(span)}",
        may_read_cases=Permission.CASES_READ in me.permissions,
    )  # fmt: skip


#: Cases the map draws at most (markers cluster; the rest are for the search and export).
MAP_CASE_LIMIT = 5000


def _recent(settings: Settings, date_from: date | None, date_to: date | None) -> dict[str, str]:
    """The days asked, else the last 30."""
    last = date_to or datetime.now(settings.zone).date()
    first = date_from or last - timedelta(days=29)
    return {"from": first.isoformat(), "to": last.isoformat()}


@router.get("/map/cases.geojson")
def cases_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Cases reported in the days asked, in the person's scope (`assessment.search`, as the
    case search API), as points in the tiles' datum; the browser clusters them."""
    filters = search.CaseFilter.model_validate(_recent(settings, date_from, date_to))
    features: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(features) < MAP_CASE_LIMIT:
        rows, cursor = search.search(
            session, settings, me, filters, limit=min(500, MAP_CASE_LIMIT - len(features)),
            cursor=cursor,
        )  # fmt: skip
        for row in rows:
            lon, lat = on_tiles(settings, row.lon, row.lat)
            features.append({
                "type": "Feature", "id": row.number,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "layer": "case", "status": row.status.value,
                    "label": f"{row.number} {CASE_STATUS_ZH[row.status]} "
                             f"{row.category_name or row.category_code}",
                    "href": f"{PREFIX}/cases/{row.number}",
                },
            })  # fmt: skip
        if cursor is None:
            break
    return JSONResponse(
        {"type": "FeatureCollection", "features": features, "truncated": cursor is not None}
    )


#: What the map draws of each layer, at most (the demo district has a few hundred).
MAP_LAYER_LIMIT = 5000


@router.get("/map/territory.geojson")
def territory_geojson(session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """Streets, communities and road segments in the person's sight (`list_features`, as
    the territory API), in the datum of the configured tiles."""
    features = []
    for layer, kind in (
        (Layer.JURISDICTIONS, "jurisdiction"),
        (Layer.ROAD_SEGMENTS, "segment"),
    ):
        page, _ = territory.list_features(
            session, me, layer, bbox=None, filters={}, limit=MAP_LAYER_LIMIT, cursor=None
        )
        for feature in page:
            facts = feature["properties"]
            facts = facts.model_dump(mode="json") if hasattr(facts, "model_dump") else dict(facts)
            if kind == "jurisdiction" and facts.get("level") not in ("street", "community"):
                continue
            features.append(
                {
                    "type": "Feature",
                    "id": feature["id"],
                    "geometry": map_geometry(settings, feature["geometry"]),
                    "properties": {"layer": kind, "label": facts.get("name") or feature["id"]},
                }
            )
    return JSONResponse({"type": "FeatureCollection", "features": features})
