"""Benchmark: what signing in costs a request. Authenticated `GET /me` against the very
same work served without a token check, in one run, on both engines.

    ./scripts/bench auth [--n 3000]

The unauthenticated twin is a route this script adds to its own app instance: it calls
the same service with the same principal, so the difference between the two is the
token check alone (bearer parsing, JWT signature and claims, building the principal).
`/healthz` and `/readyz` are timed too, for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

import httpx
from fastapi import FastAPI

from app.accounts.access import Principal
from app.accounts.service import me, principal_for_user, user_by_username
from app.accounts.tokens import issue_access_token, principal_from_access_token
from app.core.database import utcnow
from app.core.deps import SessionDep
from app.demo.users import create_demo_users
from app.main import create_app
from bench.common import Stats, demo_city, engine_urls, stats, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    print(
        f"auth benchmark: {args.n} requests each, in-process (httpx ASGI transport), "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    for engine, url in engine_urls(1.0).items():
        print(f"\n== {engine}")
        run(url, args.n)


async def _timed(client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int) -> Stats:
    for _ in range(50):
        assert (await client.get(path, headers=headers)).status_code == 200
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await client.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
    return stats(samples)


async def _measure(app: FastAPI, headers: dict[str, str], n: int) -> dict[str, Stats]:
    # Straight into the ASGI app on one event loop: no sockets, no test-client threads.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        mine = (await client.get("/api/v1/me", headers=headers)).json()
        assert mine["username"] == "demo-chief-2"
        assert (await client.get("/bench/me-without-token-check")).json() == mine
        return {
            "GET /healthz (no auth, no db)": await _timed(client, "/healthz", {}, n),
            "GET /readyz (no auth, 1 query)": await _timed(client, "/readyz", {}, n),
            "GET /me, same work, no token check": await _timed(
                client, "/bench/me-without-token-check", {}, n
            ),
            "GET /me with bearer token": await _timed(client, "/api/v1/me", headers, n),
        }


def run(url: str, n: int) -> None:
    with demo_city(url, 1.0) as (database, settings):
        with database.sessions() as session:
            create_demo_users(session, settings)
            principal = principal_for_user(user_by_username(session, "demo-chief-2"))
        token = issue_access_token(principal, utcnow(), settings)
        app = create_app(settings, database)

        @app.get("/bench/me-without-token-check", include_in_schema=False)
        def me_without_token_check(session: SessionDep) -> object:
            return me(session, principal)

        headers = {"Authorization": f"Bearer {token}"}
        results = asyncio.run(_measure(app, headers, n))
        for name, stats in results.items():
            print(f"  {name:<38} {stats.line()}")
        base = results["GET /me, same work, no token check"].median_ms
        authed = results["GET /me with bearer token"].median_ms
        print(f"  overhead of the token check (medians): {100 * (authed - base) / base:+.1f} %")
        check = timed(lambda: principal_from_access_token(token, settings), n)
        print(f"  token check alone (decode + principal) {check.line()}")
        assert isinstance(principal_from_access_token(token, settings), Principal)


if __name__ == "__main__":
    main()
