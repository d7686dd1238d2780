"""Benchmark: what signing in costs a request. Authenticated `GET /me` against the very
same work served without a token check, in one run, on both engines.

    ./scripts/bench auth [--n 3000]

Four ways to answer the same `GET /me`, timed interleaved (one request of each in turn,
so a busy machine slows them alike), for a road chief with 254 segments (a heavy answer)
and a patroller (a light one):

- no token check: a route this script adds that calls the same service with the same
  principal;
- decode only: a route this script adds that reads the bearer token as every route did
  before issue #15 (signature, claims, principal) and nothing more;
- the real route with the token-state check (disabled? tokens valid after?) read through
  the per-process cache (`ROADCHIEF_TOKEN_STATE_CACHE_SECONDS`, 5 s: nearly every request
  hits it);
- the real route on an app whose cache is off (0 s): one primary-key read per request,
  what each process pays once per user every 5 s.

Then the pieces alone, and `/healthz` and `/readyz` for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

import httpx
from fastapi import FastAPI, Request

from app.access.rules import Principal
from app.accounts.service import me, principal_for_user, user_by_username
from app.accounts.token_state import TokenStates
from app.accounts.tokens import issue_access_token, read_access_token
from app.core.database import Database, utcnow
from app.core.deps import SessionDep, SettingsDep
from app.demo.users import create_demo_users
from app.main import create_app
from app.settings import Settings
from bench.common import Stats, demo_city, engine_urls, stats, timed

USERS = ("demo-chief-2", "demo-patroller")
VARIANTS = (
    "no token check",
    "decode only (before #15)",
    "token state, cached (5 s)",
    "token state, read each time",
)


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


def _apps(
    settings: Settings, database: Database, principals: dict[str, Principal]
) -> list[FastAPI]:
    cached = create_app(settings, database)

    @cached.get("/bench/{username}/me-without-token-check", include_in_schema=False)
    def me_without_token_check(session: SessionDep, username: str) -> object:
        return me(session, principals[username])

    @cached.get("/bench/me-decode-only", include_in_schema=False)
    def me_decode_only(session: SessionDep, settings: SettingsDep, request: Request) -> object:
        token = request.headers["authorization"].removeprefix("Bearer ")
        return me(session, read_access_token(token, settings).principal)

    uncached = create_app(settings.model_copy(update={"token_state_cache_seconds": 0}), database)
    return [cached, uncached]


async def _interleaved(
    clients: list[httpx.AsyncClient], requests: list[tuple[int, str, dict[str, str]]], n: int
) -> list[Stats]:
    """Each of `requests` (client index, path, headers) n times, one of each in turn."""
    for _ in range(50):
        for i, path, headers in requests:
            assert (await clients[i].get(path, headers=headers)).status_code == 200
    samples: list[list[float]] = [[] for _ in requests]
    for _ in range(n):
        for k, (i, path, headers) in enumerate(requests):
            started = time.perf_counter()
            await clients[i].get(path, headers=headers)
            samples[k].append(time.perf_counter() - started)
    return [stats(s) for s in samples]


async def _measure(
    apps: list[FastAPI], tokens: dict[str, str], n: int
) -> dict[str, dict[str, Stats]]:
    # Straight into the ASGI apps on one event loop: no sockets, no test-client threads.
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        for app in apps
    ]
    try:
        results: dict[str, dict[str, Stats]] = {}
        for username in USERS:
            auth = {"Authorization": f"Bearer {tokens[username]}"}
            mine = (await clients[0].get("/api/v1/me", headers=auth)).json()
            assert mine["username"] == username
            requests = [
                (0, f"/bench/{username}/me-without-token-check", {}),
                (0, "/bench/me-decode-only", auth),
                (0, "/api/v1/me", auth),
                (1, "/api/v1/me", auth),
            ]
            for i, path, headers in requests:
                assert (await clients[i].get(path, headers=headers)).json() == mine, path
            results[username] = dict(
                zip(VARIANTS, await _interleaved(clients, requests, n), strict=True)
            )
        results["scale"] = dict(
            zip(
                ("GET /healthz (no auth, no db)", "GET /readyz (no auth, 1 query)"),
                await _interleaved(clients, [(0, "/healthz", {}), (0, "/readyz", {})], n),
                strict=True,
            )
        )
        return results
    finally:
        for client in clients:
            await client.aclose()


def run(url: str, n: int) -> None:
    with demo_city(url, 1.0) as (database, settings):
        with database.sessions() as session:
            create_demo_users(session, settings)
            principals = {u: principal_for_user(user_by_username(session, u)) for u in USERS}
        tokens = {u: issue_access_token(p, utcnow(), settings) for u, p in principals.items()}
        results = asyncio.run(_measure(_apps(settings, database, principals), tokens, n))
        for group, rows in results.items():
            print(f"  {group}")
            for name, row in rows.items():
                print(f"    {name:<30} {row.line()}")
            if group in USERS:
                base = rows[VARIANTS[0]].median_ms
                for name in VARIANTS[1:]:
                    extra = rows[name].median_ms - base
                    print(f"    {name:<30} adds {extra:+.3f} ms ({100 * extra / base:+.1f} %)")

        token = tokens[USERS[0]]
        access = read_access_token(token, settings)
        assert isinstance(access.principal, Principal)
        print("  the pieces alone")
        print(f"    {'decode (signature, claims)':<30} "
              f"{timed(lambda: read_access_token(token, settings), n).line()}")  # fmt: skip
        cached, uncached = TokenStates(5), TokenStates(0)
        with database.sessions() as session:
            pieces = {
                "token state, cached": lambda: cached.require_current(session, access),
                "token state, read": lambda: uncached.require_current(session, access),
            }
            for name, piece in pieces.items():
                print(f"    {name:<30} {timed(piece, n).line()}")


if __name__ == "__main__":
    main()
