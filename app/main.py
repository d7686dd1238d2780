"""The FastAPI application: routers of each domain, problem handlers, logging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import wiring  # noqa: F401  (the domains' registrations)
from app.access.rules import AUTH_PROBLEMS
from app.accounts.deps import AccountAuthenticator, credentials_before_body
from app.accounts.router import api_keys_router, auth_router, me_router, users_router
from app.accounts.token_state import TokenStates
from app.accounts.tokens import share_signing_key
from app.assessment.router import admin_router as assessment_admin_router
from app.assessment.router import router as assessment_router
from app.audit.router import router as audit_router
from app.calendar.router import admin_router as calendar_admin_router
from app.calendar.router import router as calendar_router
from app.cases.router import router as case_router
from app.console.router import install_console
from app.core.bodies import BodyGate, document_body_problems, form_limits
from app.core.contract import document_problems, operation_id
from app.core.database import Database
from app.core.deps import document_read_headers
from app.core.errors import install_problem_handlers
from app.core.examples import document_examples
from app.core.logging import RequestLog, configure_logging, configure_structlog
from app.core.memory import tune_malloc
from app.core.moments import speak_zone
from app.core.tracing import configure_tracing
from app.exchange.router import router as exchange_router
from app.health.collector import database_metrics
from app.health.router import router as health_router
from app.jobs import background_jobs
from app.media.router import router as media_router
from app.notifications.router import admin_router as webhooks_admin_router
from app.notifications.router import router as inbox_router
from app.open311.router import open311_app
from app.patrols.router import router as patrols_router
from app.reports.router import cases_router
from app.reports.router import router as reports_router
from app.routing.router import admin_router as routing_admin_router
from app.routing.router import router as routing_router
from app.settings import Settings, get_settings
from app.shops.router import router as shops_router
from app.standards.identifiers import national_id_issues
from app.standards.router import router as standards_router
from app.territory.router import admin_router as territory_admin_router
from app.territory.router import router as territory_router
from app.whistles.router import router as whistles_router

API_DESCRIPTION = """
roadchief: the 路长制 (road-chief system) backend of refined city management.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`;
`title` and `detail` are in Chinese. All geometry is WGS 84 longitude/latitude.
"""


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and database."""
    settings = settings or get_settings()
    speak_zone(settings.zone)
    configure_structlog()
    tune_malloc()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with background_jobs(app.state.database, app.state.settings):
            yield
        if owns_database:
            app.state.database.dispose()

    app = FastAPI(
        title="roadchief",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        form_limits=form_limits(settings),
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.database = database or Database.from_settings(settings)
    app.state.token_states = TokenStates(settings.token_state_cache_seconds)
    # Who a credential speaks for: the accounts' answer, asked by every router's
    # `PrincipalDep` (`app.access.deps`).
    app.state.authenticator = AccountAuthenticator(app.state)
    # The territory importer checks national identifiers by the standard's rule, handed in.
    app.state.national_id_check = national_id_issues
    share_signing_key(app.state.database, settings)
    app.state.metrics_registry = database_metrics(app.state.database)
    install_problem_handlers(app)
    document_body_problems(app)
    document_problems(app, secured=AUTH_PROBLEMS)
    document_read_headers(app)
    document_examples(app)
    # Innermost of the three: its refusals are logged and carry the request id.
    app.add_middleware(BodyGate, settings=settings, check_credentials=credentials_before_body)
    app.add_middleware(RequestLog)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    if settings.trusted_proxies:
        # Outermost: everything inside sees the client the trusted proxy names. Nobody
        # else's X-Forwarded-For is believed (`roadchief serve` turns uvicorn's own off).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.include_router(health_router)
    app.include_router(territory_router)
    app.include_router(territory_admin_router)
    app.include_router(auth_router)
    app.include_router(me_router)
    app.include_router(users_router)
    app.include_router(api_keys_router)
    app.include_router(audit_router)
    app.include_router(routing_router)
    app.include_router(routing_admin_router)
    app.include_router(whistles_router)
    app.include_router(media_router)
    app.include_router(reports_router)
    app.include_router(cases_router)  # /cases/nearby before /cases/{number}
    app.include_router(case_router)
    app.include_router(calendar_router)
    app.include_router(calendar_admin_router)
    app.include_router(inbox_router)
    app.include_router(webhooks_admin_router)
    app.include_router(patrols_router)
    app.include_router(shops_router)
    app.include_router(assessment_router)
    app.include_router(assessment_admin_router)
    app.include_router(exchange_router)
    app.include_router(standards_router)
    install_console(app)  # the web console: /console pages and their static files
    app.mount("/open311/v2", open311_app(app))  # Open311's own error format under it
    configure_tracing(app, app.state.database.engine)  # only if OTEL_* variables ask
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory`."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
