"""Benchmark: routing one report in-process on the ten-times demo city, both engines.

    ./scripts/bench routing [--scale 10] [--n 5000]

Prints, per engine: the whole decision (as the dry-run endpoint makes it, without HTTP),
then its parts: the territory look-ups (jurisdictions, grid cell, nearest segment and its
chiefs, the named asset), the per-decision check that the cached tables are current, and
applying the rule set to facts already gathered. Points are seeded random points inside
the district with random leaf categories; one in five names a manhole cover next to it.
"""

from __future__ import annotations

import argparse
import platform
import random
from collections.abc import Iterator

from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from app.access.rules import SYSTEM
from app.routing import service
from app.routing.models import Category, RuleSet
from app.routing.schemas import RouteRequest, RoutingFacts
from app.routing.shipped import load_shipped_routing
from app.territory.models import Asset, AssetType, RoadSegment
from bench.common import demo_city, engine_urls, timed
from bench.locate import points


def requests(session: object, scale: float, n: int) -> list[RouteRequest]:
    rng = random.Random(7)
    leaves = list(
        session.scalars(  # type: ignore[attr-defined]
            select(Category.code).where(Category.is_group.is_(False), Category.active)
        )
    )
    manholes = session.execute(  # type: ignore[attr-defined]
        select(Asset.code, Asset.geom)
        .where(Asset.asset_type == AssetType.MANHOLE_COVER)
        .order_by(Asset.code)
        .limit(2000)
    ).all()
    out = []
    for lon, lat in points(scale, n):
        if rng.random() < 0.2:
            code, geom = rng.choice(manholes)
            p = to_shape(geom)
            out.append(
                RouteRequest(category_code="roads.manhole", lon=p.x, lat=p.y, asset_code=code)
            )
        else:
            out.append(RouteRequest(category_code=rng.choice(leaves), lon=lon, lat=lat))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    print(
        f"routing benchmark: scale {args.scale:g}, {args.n} reports, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    for engine, url in engine_urls(args.scale).items():
        print(f"\n== {engine}")
        measure(url, args.scale, args.n)


def measure(url: str, scale: float, n: int) -> None:
    with demo_city(url, scale) as (database, settings), database.sessions() as session:
        for line in load_shipped_routing(session, SYSTEM):
            print(f"  {line}")
        segments = session.scalar(select(func.count()).select_from(RoadSegment))
        active = session.scalar(select(RuleSet.name).where(RuleSet.status == "active"))
        print(f"  data: {segments} road segments; active rule set: {active}")
        sample = requests(session, scale, n)

        def cycle() -> Iterator[RouteRequest]:
            while True:
                yield from sample

        it = cycle()

        def whole() -> None:
            service.decide(session, SYSTEM, settings, next(it))

        print(f"  decision (whole)         {timed(whole, n).line()}")

        context = service.routing_context(session)

        def facts_of(r: RouteRequest) -> RoutingFacts:
            category = context.taxonomy[r.category_code]
            return service.gather_facts(
                session, settings, context, category, r.lon, r.lat, r.asset_code
            )

        it = cycle()
        print(f"  territory look-ups       {timed(lambda: facts_of(next(it)), n).line()}")
        print(
            "  tables-current check     "
            f"{timed(lambda: service.routing_context(session), n).line()}"
        )
        facts = [facts_of(r) for r in sample[:500]]
        fi = iter(facts * (n // 500 + 60))

        def rules() -> None:
            service.decide_on_facts(session, context, next(fi), settings.zone)

        print(f"  rule set applied         {timed(rules, n).line()}")


if __name__ == "__main__":
    main()
