"""Benchmark: `locate` in-process on the ten-times demo city, SpatiaLite and PostGIS.

    ./scripts/bench locate [--scale 10] [--n 5000]

Prints, per engine: the whole call, and each territory look-up alone, over the same
random points inside the district (seeded).
"""

from __future__ import annotations

import argparse
import platform
import random
from collections.abc import Iterator

from shapely.geometry import shape
from sqlalchemy import func, select

from app.access.rules import SYSTEM
from app.core.geo import LocalFrame
from app.demo.citygen import generate_city
from app.territory import locator
from app.territory.models import GridCell, RoadSegment
from bench.common import demo_city, engine_urls, timed


def points(scale: float, n: int) -> list[tuple[float, float]]:
    district = shape(generate_city(scale)["jurisdictions"]["features"][0]["geometry"])
    x1, y1, x2, y2 = district.bounds
    rng = random.Random(42)
    return [(rng.uniform(x1, x2), rng.uniform(y1, y2)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    sample = points(args.scale, args.n)
    print(
        f"locate benchmark: scale {args.scale:g}, {args.n} random points, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    for engine, url in engine_urls(args.scale).items():
        print(f"\n== {engine}")
        with demo_city(url, args.scale) as (database, settings), database.sessions() as session:
            cells = session.scalar(select(func.count()).select_from(GridCell))
            segments = session.scalar(select(func.count()).select_from(RoadSegment))
            print(f"  data: {cells} grid cells, {segments} road segments")
            it = iter(sample * 10)

            def whole(it: Iterator[tuple[float, float]] = it) -> None:
                lon, lat = next(it)
                locator.locate(session, SYSTEM, settings, lon, lat)

            print(f"  locate (whole call)      {timed(whole, args.n).line()}")
            parts = {
                "jurisdictions": lambda lon, lat: locator.containing_places(session, lon, lat),
                "grid cell": lambda lon, lat: locator.grid_cell_code(session, lon, lat),
                "nearest segment": lambda lon, lat: locator.nearest_segment(
                    session, LocalFrame(lon, lat), settings.locate_segment_radius_m
                ),
                "nearest assets": lambda lon, lat: locator.nearest_assets(
                    session,
                    LocalFrame(lon, lat),
                    settings.locate_asset_radius_m,
                    settings.locate_asset_limit,
                ),
            }
            for name, part in parts.items():
                it2 = iter(sample * 10)

                def one(part=part, it2=it2) -> None:  # type: ignore[no-untyped-def]
                    lon, lat = next(it2)
                    part(lon, lat)

                print(f"  {name:<24} {timed(one, args.n).line()}")


if __name__ == "__main__":
    main()
