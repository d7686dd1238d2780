"""Territory schemas: the GeoJSON properties accepted on import and returned on read."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.pagination import PageQuery, plain_name
from app.territory.models import (
    AssetType,
    ExcellenceGrade,
    JurisdictionLevel,
    Pledge,
    RoadGrade,
    ShopKind,
    UnitKind,
)

Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Properties(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- import: the properties each layer's features must carry ------------------------------


class JurisdictionIn(_Properties):
    code: Code = Field(examples=["410199001"])
    name: Name = Field(examples=["文博路街道"])
    level: JurisdictionLevel
    parent_code: Code | None = Field(default=None, examples=["410199"])


class UnitIn(_Properties):
    code: Code = Field(examples=["urban-management"])
    name: Name = Field(examples=["区城管局"])
    name_en: Name | None = Field(default=None, examples=["District Urban Management Bureau"])
    kind: UnitKind
    jurisdiction_code: Code | None = Field(
        default=None, description="For a street office: the street it governs."
    )


class GridCellIn(_Properties):
    code: Code = Field(examples=["4101990010010001"])
    community_code: Code = Field(examples=["410199001001"])


class RoadSegmentIn(_Properties):
    code: Code = Field(examples=["RS-H03-07"])
    name: Name = Field(examples=["金河路（文博街—兴华街段）"])
    road_name: Name = Field(examples=["金河路"])
    grade: RoadGrade
    excellence: ExcellenceGrade | None = None
    street_code: Code | None = Field(
        default=None, description="Street office area; derived from the midpoint if absent."
    )


class AssetIn(_Properties):
    code: Code = Field(examples=["MH-WAT-000123"])
    asset_type: AssetType
    owner_unit_code: Code = Field(examples=["water-company"])
    name: Name | None = None
    national_id: Annotated[str, StringConstraints(pattern=r"^\d{1,20}$")] | None = Field(
        default=None,
        description="部件标识码 of the national standard in force (16 digits in CJ/T 214-2007, "
        "17 in GB/T 30428.2-2013): its district code must be the asset's district.",
        examples=["41019901010000001"],
    )


class WorkstationIn(_Properties):
    code: Code = Field(examples=["WS-001"])
    name: Name = Field(examples=["文博路街道第1路长工作站"])
    street_code: Code = Field(examples=["410199001"])
    address: Name | None = None


class ShopIn(_Properties):
    code: Code = Field(examples=["SH-000001"])
    name: Name = Field(examples=["金河路便民超市"])
    kind: ShopKind = ShopKind.SHOP
    pledge: Pledge = Field(default=Pledge.FOUR, description="门前四包 (four) or 门前五包 (five).")
    address: Name | None = None
    contact_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None
    ) = None
    contact_phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9+\-() ]{3,32}$")]
        | None
    ) = None
    segment_code: Code | None = Field(
        default=None,
        description="The road segment the shop fronts; if absent, the nearest within 60 m.",
    )


class ImportResult(BaseModel):
    """What an import changed: all features of the file, or none."""

    layer: str = Field(examples=["grid_cells"])
    created: int = Field(examples=[1260])
    updated: int = Field(examples=[0])


# --- read: what the API returns -----------------------------------------------------------


class JurisdictionOut(BaseModel):
    code: str
    name: str
    level: JurisdictionLevel
    parent_code: str | None
    path: list[str] = Field(description="Codes from the root down to this jurisdiction.")


class UnitOut(BaseModel):
    code: str
    name: str
    name_en: str | None
    kind: UnitKind
    jurisdiction_code: str | None


class GridCellOut(BaseModel):
    code: str
    community_code: str
    street_code: str | None


class RoadSegmentOut(BaseModel):
    code: str
    name: str
    road_name: str
    grade: RoadGrade
    excellence: ExcellenceGrade | None
    length_m: float = Field(description="Length on the WGS 84 ellipsoid, metres.")
    street_code: str


class AssetOut(BaseModel):
    code: str
    asset_type: AssetType
    name: str | None
    owner_unit_code: str
    owner_unit_name: str
    national_id: str | None = Field(default=None, description="部件标识码, when imported.")


class ShopOut(BaseModel):
    code: str
    name: str
    kind: ShopKind
    pledge: Pledge
    address: str | None
    contact_name: str | None
    contact_phone: str | None
    segment_code: str
    street_code: str
    credit: float = Field(description="诚信分 (0..100); below 60: blacklisted.")
    flag: str | None = Field(description="Latest rating: red or black flag.")
    stars: int | None


class WorkstationOut(BaseModel):
    code: str
    name: str
    address: str | None
    street_code: str


G = TypeVar("G")
P = TypeVar("P")


class GeoJSONGeometry(BaseModel):
    """A GeoJSON geometry in WGS 84 longitude/latitude."""

    type: Literal["Point", "LineString", "Polygon", "MultiPolygon"]
    coordinates: list[Any]


class Feature(BaseModel, Generic[P]):
    """A GeoJSON Feature of a territory layer, its properties typed by layer."""

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        # A name client generators can use: RoadSegmentFeature, not Feature_RoadSegmentOut_.
        return f"{plain_name(params[0])}Feature"

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: GeoJSONGeometry
    properties: P


# --- locate --------------------------------------------------------------------------------


class PlaceRef(BaseModel):
    code: str
    name: str
    level: JurisdictionLevel


class LocatedSegment(BaseModel):
    code: str
    name: str
    road_name: str
    grade: RoadGrade
    distance_m: float = Field(description="Shortest distance from the point, metres.")


class LocatedAsset(BaseModel):
    code: str
    asset_type: AssetType
    owner_unit_code: str
    owner_unit_name: str
    distance_m: float


class Location(BaseModel):
    """Where a point lies: the answer every report and patrol fix is placed with."""

    lon: float = Field(description="WGS 84 (converted when the point was sent in GCJ-02).")
    lat: float
    jurisdictions: list[PlaceRef] = Field(description="From the district down to the community.")
    street: PlaceRef | None
    community: PlaceRef | None
    grid_cell_code: str | None
    segment: LocatedSegment | None = Field(
        description="Nearest road segment within `segment_radius_m`, or null."
    )
    nearby_assets: list[LocatedAsset] = Field(
        description="Nearest assets within `asset_radius_m`, nearest first."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lon": 113.5703,
                    "lat": 34.8068,
                    "jurisdictions": [
                        {"code": "410199", "name": "金河区", "level": "district"},
                        {"code": "410199001", "name": "文博路街道", "level": "street"},
                        {"code": "410199001001", "name": "文博社区", "level": "community"},
                    ],
                    "street": {"code": "410199001", "name": "文博路街道", "level": "street"},
                    "community": {"code": "410199001001", "name": "文博社区", "level": "community"},
                    "grid_cell_code": "4101990010010012",
                    "segment": {
                        "code": "RS-H02-03",
                        "name": "兴华路（文博街—龙湖街段）",
                        "road_name": "兴华路",
                        "grade": "secondary",
                        "distance_m": 12.4,
                    },
                    "nearby_assets": [
                        {
                            "code": "MH-GAS-000031",
                            "asset_type": "manhole_cover",
                            "owner_unit_code": "gas-company",
                            "owner_unit_name": "金河燃气公司",
                            "distance_m": 3.2,
                        }
                    ],
                }
            ]
        }
    )


# --- list queries: each list's filters (unknown parameters are refused) -------------------


class LayerQuery(PageQuery):
    bbox: str | None = Field(
        default=None,
        description="min_lon,min_lat,max_lon,max_lat (WGS 84)",
        examples=["113.56,34.80,113.58,34.82"],
    )

    def filters(self) -> dict[str, Any]:
        """The layer's own filters, by name."""
        return self.model_dump(exclude={"bbox", "limit", "cursor"})


class JurisdictionQuery(LayerQuery):
    level: JurisdictionLevel | None = None
    parent: str | None = Field(default=None, description="Parent jurisdiction code")


class GridCellQuery(LayerQuery):
    community: str | None = Field(default=None, description="Community code")
    street: str | None = Field(default=None, description="Street office area code")


class RoadSegmentQuery(LayerQuery):
    street: str | None = Field(default=None, description="Street office area code")
    grade: RoadGrade | None = None
    excellence: ExcellenceGrade | None = None
    road_name: str | None = Field(default=None, description="Road name, e.g. 金河路")


class AssetQuery(LayerQuery):
    asset_type: AssetType | None = None
    owner: str | None = Field(default=None, description="Owner unit code")


class WorkstationQuery(LayerQuery):
    street: str | None = Field(default=None, description="Street office area code")


class ShopQuery(LayerQuery):
    street: str | None = Field(default=None, description="Street office area code")
    segment: str | None = Field(default=None, description="Road segment code")
    pledge: Pledge | None = None
    kind: ShopKind | None = None


class UnitQuery(PageQuery):
    kind: UnitKind | None = None
