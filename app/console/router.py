"""The web console (Web 控制台) under /console: pages for desk work, in Chinese.

Every page calls the same service functions as the API, with the signed-in person's
`Principal`: what a page lists, shows or lets one do is what the API would answer that
person. Pages are server-rendered (Jinja2); htmx swaps parts of them in place.

The pages live by whom they serve, each module with its own router: `auth` (sign-in),
`staff` (department tasks), `cases` (one case and its photos), `centre` (dispatch,
verification, whistles, alarms), `assessors` (KPIs, rankings, maps and scores), `admin`
(users, audit, webhooks, routing tables, chiefs' segments) and `maps`; `deps` holds what
they share, `pages` how things are shown, `session` the cookies and CSRF.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console import admin, assessors, auth, cases, centre, maps, staff
from app.console.pages import HERE
from app.console.session import PREFIX, CsrfRefused

#: Every page module; no two share a path, so their order decides nothing.
PAGE_MODULES = (auth, staff, cases, centre, assessors, admin, maps)


def install_console(app: FastAPI) -> None:
    """The console's pages and its static files (htmx, Leaflet: vendored, no CDN)."""
    for module in PAGE_MODULES:
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")


__all__ = ["CsrfRefused", "install_console"]
