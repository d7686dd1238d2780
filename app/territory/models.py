"""Territory tables. Every geometry is WGS 84 (EPSG:4326) and carries a spatial index."""

from __future__ import annotations

from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, TimestampMixin, str_enum


class JurisdictionLevel(StrEnum):
    """区/市 → 街道/镇 → 社区/村."""

    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"


class RoadGrade(StrEnum):
    """道路等级: 主干道 / 次干道 / 支路 / 背街小巷."""

    TRUNK = "trunk"
    SECONDARY = "secondary"
    BRANCH = "branch"
    BACK_LANE = "back_lane"


class ExcellenceGrade(StrEnum):
    """ "千百十" road grade: 优秀 / 卓越 / 极致."""

    EXCELLENT = "excellent"
    OUTSTANDING = "outstanding"
    ULTIMATE = "ultimate"


class UnitKind(StrEnum):
    """职能部门 / 街道办事处 / 公用事业(产权)单位 / 指挥中心."""

    FUNCTIONAL_DEPARTMENT = "functional_department"
    STREET_OFFICE = "street_office"
    UTILITY = "utility"
    COMMAND_CENTRE = "command_centre"


class AssetType(StrEnum):
    """部件: 窨井盖 / 路灯杆 / 垃圾桶 / 公厕 / 标志牌 / 消防栓."""

    MANHOLE_COVER = "manhole_cover"
    LAMP_POST = "lamp_post"
    TRASH_BIN = "trash_bin"
    PUBLIC_TOILET = "public_toilet"
    SIGN = "sign"
    FIRE_HYDRANT = "fire_hydrant"


class ShopKind(StrEnum):
    """沿街商户 / 沿街单位 (机关企事业单位)."""

    SHOP = "shop"
    INSTITUTION = "institution"


class Pledge(StrEnum):
    """Which pledge the frontage signed: 门前四包 (four items) or 门前五包 (five)."""

    FOUR = "four"
    FIVE = "five"


class Jurisdiction(TimestampMixin, Base):
    """A node of the jurisdiction tree (辖区): district, street office area or community.

    `path` is the chain of codes from the root ("/410199/410199001/"), so a subtree is
    one prefix match.
    """

    __tablename__ = "jurisdictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[JurisdictionLevel] = mapped_column(str_enum(JurisdictionLevel))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(String(400), index=True)
    geom: Mapped[WKBElement] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, nullable=False))

    parent: Mapped[Jurisdiction | None] = relationship(remote_side=[id])


class Unit(TimestampMixin, Base):
    """A department or unit that acts on cases (职能部门、责任单位、产权单位、街道办事处)."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[UnitKind] = mapped_column(str_enum(UnitKind))
    jurisdiction_id: Mapped[int | None] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )

    jurisdiction: Mapped[Jurisdiction | None] = relationship()


class GridCell(TimestampMixin, Base):
    """A unit grid cell (万米单元网格, about 100 m × 100 m) inside one community."""

    __tablename__ = "grid_cells"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POLYGON", srid=4326, nullable=False))

    community: Mapped[Jurisdiction] = relationship()


class RoadSegment(TimestampMixin, Base):
    """A road segment (路段): the unit a road chief owns, patrols and is scored on."""

    __tablename__ = "road_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    road_name: Mapped[str] = mapped_column(String(100))
    grade: Mapped[RoadGrade] = mapped_column(str_enum(RoadGrade))
    excellence: Mapped[ExcellenceGrade | None] = mapped_column(str_enum(ExcellenceGrade))
    length_m: Mapped[float] = mapped_column(Float)
    street_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("LINESTRING", srid=4326, nullable=False))

    street: Mapped[Jurisdiction] = relationship()


class Asset(TimestampMixin, Base):
    """A component (部件) in public space with the unit that owns it (产权单位)."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    asset_type: Mapped[AssetType] = mapped_column(str_enum(AssetType), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    #: 部件标识码 of the national standard (district code + class + serial), as imported.
    national_id: Mapped[str | None] = mapped_column(String(20), index=True, unique=True)
    owner_unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))

    owner_unit: Mapped[Unit] = relationship()


class Workstation(TimestampMixin, Base):
    """A road-chief workstation (路长工作站) where the road team meets."""

    __tablename__ = "workstations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    street_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))

    street: Mapped[Jurisdiction] = relationship()


class Shop(TimestampMixin, Base):
    """A street-front shop or unit (沿街商户/单位) with its frontage pledge (门前四包/五包).

    It belongs to the road segment whose frontage it faces; its street office follows from
    the segment. Not a user: chiefs visit it and assessors rate it.
    """

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ShopKind] = mapped_column(str_enum(ShopKind))
    pledge: Mapped[Pledge] = mapped_column(str_enum(Pledge))
    address: Mapped[str | None] = mapped_column(String(300))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("road_segments.id", ondelete="RESTRICT"), index=True
    )
    street_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))
    #: 诚信分: starts at 100, moves with visits and ratings (`shop_credit_events`).
    credit: Mapped[float] = mapped_column(Float, default=100.0, server_default="100")
    #: The latest rating: red or black flag (红黑旗), and stars (星级).
    flag: Mapped[str | None] = mapped_column(String(8))
    stars: Mapped[int | None] = mapped_column(Integer)

    segment: Mapped[RoadSegment] = relationship()
    street: Mapped[Jurisdiction] = relationship()
