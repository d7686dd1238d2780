"""Territory endpoints: read layers as GeoJSON, locate a point, import layers (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query, Request

from app.access.deps import PrincipalDep
from app.access.rules import Principal
from app.core.bodies import body_limit
from app.core.coords import PointIn
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.pagination import FeaturePage, Page
from app.core.routes import api_router
from app.territory import locator, service
from app.territory.importer import (
    GeoJSONMalformed,
    Layer,
    NationalIdCheck,
    TerritoryImportRejected,
)
from app.territory.schemas import (
    AssetOut,
    AssetQuery,
    Feature,
    GridCellOut,
    GridCellQuery,
    ImportResult,
    JurisdictionOut,
    JurisdictionQuery,
    LayerQuery,
    Location,
    RoadSegmentOut,
    RoadSegmentQuery,
    ShopOut,
    ShopQuery,
    UnitOut,
    UnitQuery,
    WorkstationOut,
    WorkstationQuery,
)

router = api_router(prefix="/api/v1/territory", tags=["territory"])
admin_router = api_router(prefix="/api/v1/admin/territory", tags=["admin: territory"])

_READ_ERRORS = problem_responses(service.InvalidBBox)


def _page(layer: Layer, session: Any, principal: Principal, params: LayerQuery) -> dict[str, Any]:
    features, next_cursor = service.list_features(
        session,
        principal,
        layer,
        bbox=service.parse_bbox(params.bbox),
        filters=params.filters(),
        limit=params.limit,
        cursor=params.cursor,
    )
    return {
        "features": features,
        "numberReturned": len(features),
        "next_cursor": next_cursor,
        "links": [],
    }


@router.get(
    "/jurisdictions",
    summary="List jurisdictions (区、街道、社区) as GeoJSON",
    response_model=FeaturePage[Feature[JurisdictionOut]],
    responses=_READ_ERRORS,
)
def list_jurisdictions(
    session: SessionDep, principal: PrincipalDep, params: Annotated[JurisdictionQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.JURISDICTIONS, session, principal, params)


@router.get(
    "/grid-cells",
    summary="List unit grid cells (万米单元网格) as GeoJSON",
    response_model=FeaturePage[Feature[GridCellOut]],
    responses=_READ_ERRORS,
)
def list_grid_cells(
    session: SessionDep, principal: PrincipalDep, params: Annotated[GridCellQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.GRID_CELLS, session, principal, params)


@router.get(
    "/road-segments",
    summary="List road segments (路段) as GeoJSON",
    response_model=FeaturePage[Feature[RoadSegmentOut]],
    responses=_READ_ERRORS,
)
def list_road_segments(
    session: SessionDep, principal: PrincipalDep, params: Annotated[RoadSegmentQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.ROAD_SEGMENTS, session, principal, params)


@router.get(
    "/assets",
    summary="List assets (部件) with their owner units as GeoJSON",
    response_model=FeaturePage[Feature[AssetOut]],
    responses=_READ_ERRORS,
)
def list_assets(
    session: SessionDep, principal: PrincipalDep, params: Annotated[AssetQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.ASSETS, session, principal, params)


@router.get(
    "/workstations",
    summary="List road-chief workstations (路长工作站) as GeoJSON",
    response_model=FeaturePage[Feature[WorkstationOut]],
    responses=_READ_ERRORS,
)
def list_workstations(
    session: SessionDep, principal: PrincipalDep, params: Annotated[WorkstationQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.WORKSTATIONS, session, principal, params)


@router.get(
    "/shops",
    summary="List street-front shops and units (沿街商户) with their pledge, as GeoJSON",
    response_model=FeaturePage[Feature[ShopOut]],
    responses=_READ_ERRORS,
)
def list_shops(
    session: SessionDep, principal: PrincipalDep, params: Annotated[ShopQuery, Query()]
) -> dict[str, Any]:
    return _page(Layer.SHOPS, session, principal, params)


_ONE = problem_responses(NotFound)


@router.get(
    "/jurisdictions/{code}",
    summary="One jurisdiction",
    response_model=Feature[JurisdictionOut],
    responses=_ONE,
)
def get_jurisdiction(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.JURISDICTIONS, code)


@router.get(
    "/grid-cells/{code}",
    summary="One grid cell",
    response_model=Feature[GridCellOut],
    responses=_ONE,
)
def get_grid_cell(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.GRID_CELLS, code)


@router.get(
    "/road-segments/{code}",
    summary="One road segment",
    response_model=Feature[RoadSegmentOut],
    responses=_ONE,
)
def get_road_segment(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.ROAD_SEGMENTS, code)


@router.get("/assets/{code}", summary="One asset", response_model=Feature[AssetOut], responses=_ONE)
def get_asset(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.ASSETS, code)


@router.get(
    "/workstations/{code}",
    summary="One workstation",
    response_model=Feature[WorkstationOut],
    responses=_ONE,
)
def get_workstation(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.WORKSTATIONS, code)


@router.get("/shops/{code}", summary="One shop", response_model=Feature[ShopOut], responses=_ONE)
def get_shop(session: SessionDep, principal: PrincipalDep, code: str) -> dict[str, Any]:
    return service.get_feature(session, principal, Layer.SHOPS, code)


@router.get(
    "/units",
    summary="List departments and units (职能部门、责任单位、产权单位)",
    response_model=Page[UnitOut],
    responses=problem_responses(),
)
def list_units(
    session: SessionDep, principal: PrincipalDep, params: Annotated[UnitQuery, Query()]
) -> Page[UnitOut]:
    items, next_cursor = service.list_units(
        session, principal, kind=params.kind, limit=params.limit, cursor=params.cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/units/{code}", summary="One department or unit", response_model=UnitOut, responses=_ONE
)
def get_unit(session: SessionDep, principal: PrincipalDep, code: str) -> UnitOut:
    return service.get_unit(session, principal, code)


@router.get(
    "/locate",
    summary="Where is this point: jurisdictions, grid cell, nearest segment and assets",
    response_model=Location,
    responses=problem_responses(locator.OutsideServiceArea, locator.InvalidLocation),
)
def locate(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    point: Annotated[PointIn, Query()],
    segment_radius_m: Annotated[
        float | None,
        Query(
            gt=0,
            le=1000,
            description="Search radius for the nearest road segment (default from settings)",
        ),
    ] = None,
    asset_radius_m: Annotated[
        float | None,
        Query(gt=0, le=1000, description="Search radius for assets (default from settings)"),
    ] = None,
    asset_limit: Annotated[
        int | None, Query(ge=0, le=50, description="How many assets at most")
    ] = None,
) -> Location:
    return locator.locate(
        session,
        principal,
        settings,
        *point.wgs84(),
        segment_radius_m=segment_radius_m,
        asset_radius_m=asset_radius_m,
        asset_limit=asset_limit,
    )


_FC_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [113.5703, 34.8068]},
            "properties": {
                "code": "MH-GAS-000031",
                "asset_type": "manhole_cover",
                "owner_unit_code": "gas-company",
                "name": None,
            },
        }
    ],
}


def _national_ids(request: Request) -> NationalIdCheck:
    """The national identifier rule the app was built with (`app.main.create_app`)."""
    check: NationalIdCheck = request.app.state.national_id_check
    return check


@admin_router.post(
    "/{layer}/import",
    summary="Import a layer from a GeoJSON FeatureCollection (all or nothing)",
    response_model=ImportResult,
    responses=problem_responses(GeoJSONMalformed, TerritoryImportRejected),
)
@body_limit(lambda s: s.territory_import_max_bytes)
def import_territory_layer(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    national_ids: Annotated[NationalIdCheck, Depends(_national_ids)],
    layer: Layer,
    document: Annotated[
        dict[str, Any],
        Body(
            media_type="application/geo+json",
            description="A GeoJSON FeatureCollection whose properties follow the layer's schema "
            "(see README, 'Territory import'). Features with an existing code are updated.",
            examples=[_FC_EXAMPLE],
        ),
    ],
) -> ImportResult:
    return service.import_territory(session, settings, principal, layer, document, national_ids)
