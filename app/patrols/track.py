"""From raw fixes to a track, and from a track to the segments it covered (pure).

Distances are measured in a local metric frame centred on the track: metres, the same
on both engines (see `app.core.geo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import shapely
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

from app.core.geo import LocalFrame, geodesic_length_m
from app.patrols.models import FixFlag


@dataclass
class RawFix:
    recorded_at: datetime
    lon: float
    lat: float
    flag: FixFlag | None


def drop_impossible_jumps(fixes: Sequence[RawFix], max_speed_mps: float) -> None:
    """Flag each fix that lies further from the last good one than `max_speed_mps` allows
    for the time between them (a jump of 2 km in 10 s). `fixes` in time order."""
    last: RawFix | None = None
    for fix in fixes:
        if fix.flag is not None:
            continue
        if last is not None:
            seconds = (fix.recorded_at - last.recorded_at).total_seconds()
            metres = LocalFrame(last.lon, last.lat).distance_m(shapely.Point(fix.lon, fix.lat))
            if seconds <= 0 or metres / seconds > max_speed_mps:
                fix.flag = FixFlag.IMPOSSIBLE_SPEED
                continue
        last = fix


def track_of(fixes: Sequence[RawFix]) -> LineString | None:
    """The line through the good fixes in time order (None with fewer than two)."""
    good = [(f.lon, f.lat) for f in fixes if f.flag is None]
    return LineString(good) if len(good) >= 2 else None


@dataclass(frozen=True)
class Coverage:
    segment_id: int
    length_m: float
    covered_m: float
    share: float
    complete: bool
    covered: MultiLineString | None


def coverage(
    track: LineString,
    segments: Sequence[tuple[int, BaseGeometry]],
    buffer_m: float,
    complete_share: float,
) -> list[Coverage]:
    """For each segment, the part within `buffer_m` of the track: its length, its share of
    the segment, and whether that makes a complete patrol of it. Untouched segments are
    left out."""
    centre = track.centroid
    frame = LocalFrame(centre.x, centre.y)
    corridor = frame.to_local(track).buffer(buffer_m)
    result = []
    for segment_id, geom in segments:
        local = frame.to_local(geom)
        inside = local.intersection(corridor)
        covered_m = inside.length
        if covered_m <= 0 or local.length <= 0:
            continue
        parts = [g for g in getattr(inside, "geoms", [inside]) if g.length > 0]
        covered = MultiLineString([frame.to_lonlat(p) for p in parts if isinstance(p, LineString)])
        share = min(1.0, covered_m / local.length)
        result.append(
            Coverage(
                segment_id=segment_id,
                length_m=round(local.length, 1),
                covered_m=round(covered_m, 1),
                share=round(share, 4),
                complete=share >= complete_share,
                covered=covered if not covered.is_empty else None,
            )
        )
    return result


def length_m(track: LineString | None) -> float:
    return round(geodesic_length_m(track), 1) if track is not None else 0.0
