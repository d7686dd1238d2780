"""Places in the demo city that the stories need: a point on a kind of road, an asset."""

from __future__ import annotations

from dataclasses import dataclass

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import SegmentChief, User
from app.territory.models import Asset, AssetType, Jurisdiction, RoadGrade, RoadSegment, Unit


@dataclass(frozen=True)
class Spot:
    segment_code: str
    lon: float
    lat: float
    street_code: str

    def moved(self, metres_east: float) -> tuple[float, float]:
        """A point `metres_east` of this one (about 92.7 km per degree at 34.8° N)."""
        return self.lon + metres_east / 91_500, self.lat


def on_segment(
    session: Session,
    *,
    grade: RoadGrade | None = None,
    chief: str | None = None,
    street: str | None = None,
    skip: int = 0,
) -> Spot:
    """The midpoint of a demo segment: of `grade`, of which `chief` is a road chief, in
    `street` (all optional)."""
    query = select(RoadSegment, Jurisdiction.code).join(
        Jurisdiction, RoadSegment.street_id == Jurisdiction.id
    )
    if grade is not None:
        query = query.where(RoadSegment.grade == grade)
    if street is not None:
        query = query.where(Jurisdiction.code == street)
    if chief is not None:
        query = (
            query.join(SegmentChief, SegmentChief.segment_id == RoadSegment.id)
            .join(User, SegmentChief.user_id == User.id)
            .where(User.username == chief)
        )
    segment, street_code = session.execute(
        query.order_by(RoadSegment.code).offset(skip).limit(1)
    ).one()
    middle = to_shape(segment.geom).interpolate(0.5, normalized=True)
    return Spot(segment.code, middle.x, middle.y, street_code)


def asset_owned_by(
    session: Session, asset_type: AssetType, owner_code: str
) -> tuple[str, float, float]:
    asset = session.scalar(
        select(Asset)
        .join(Unit, Asset.owner_unit_id == Unit.id)
        .where(Asset.asset_type == asset_type, Unit.code == owner_code)
        .order_by(Asset.code)
        .limit(1)
    )
    assert asset is not None
    point = to_shape(asset.geom)
    return asset.code, point.x, point.y
