"""`/open311/v2/`: GeoReport v2 and mySociety's updates, as a mounted sub-application.

Mounted apart so that everything under `/open311` (unknown paths, wrong methods, bad
input, the intake's refusals) answers in Open311's own error format, while the rest of the
API keeps its problem details. Routes are thin: read the parameters, call the service,
render XML or JSON (`.xml`/`.json` in the path).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem
from app.core.routes import api_router
from app.open311 import service
from app.open311.errors import Open311Error, error_response, from_problem
from app.open311.render import Document, Format, respond
from app.open311.service import SPECIFICATION, RequestForm
from app.open311.settings import Open311Settings, open311_settings

log = logging.getLogger(__name__)
OptionsDep = Annotated[Open311Settings, Depends(open311_settings)]
router = api_router()
#: The changeset of this endpoint's interface (discovery's `changeset`).
CHANGESET = datetime.fromisoformat("2026-12-01T00:00:00+08:00")


def _format(fmt: str) -> Format:
    try:
        return Format(fmt)
    except ValueError:
        raise Open311Error(400, f"format must be xml or json, not {fmt!r}") from None


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _utf8(value: str) -> str:
    """The spec's UTF-8 for a form value sent as raw bytes (`curl -d '描述=…'`): Starlette
    reads unescaped bytes as Latin-1; percent-escaped ones arrive right and are kept."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


async def _form(request: Request) -> RequestForm:
    """The form of a POST (url-encoded or multipart), `attribute[code]` and
    `attribute[code][]` gathered per code; the query string counts too (some clients
    send `api_key` there)."""
    form = await request.form()
    urlencoded = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    fields: dict[str, str] = dict(request.query_params)
    attributes: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            continue  # files are not part of GeoReport v2: photos come as media_url
        if urlencoded:
            value = _utf8(value)
        if name.startswith("attribute[") and name.endswith("]"):
            code = name[len("attribute[") :].removesuffix("[]").removesuffix("]")
            attributes.setdefault(code, []).append(value)
        else:
            fields[name] = value
    return RequestForm(fields=fields, attributes=attributes)


def _base_url(request: Request) -> str:
    return str(request.base_url).removesuffix("/open311/v2/").removesuffix("/")


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request, options: OptionsDep) -> Response:
    url = str(request.url_for("services", fmt="xml")).removesuffix("/services.xml")
    body = {
        "changeset": CHANGESET,
        "contact": options.contact,
        "key_service": options.key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return respond(Document(root="discovery", body=body), _format(fmt))


@router.get("/services.{fmt}", name="services")
def services(fmt: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    out = _format(fmt)
    service.district(session, _params(request).get("jurisdiction_id"))
    rows = service.service_list(session, settings)
    return respond(Document(root="services", item="service", body=rows), out)


@router.get("/services/{service_code}.{fmt}")
def service_definition(
    service_code: str, fmt: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    out = _format(fmt)
    service.district(session, _params(request).get("jurisdiction_id"))
    body = service.service_definition(session, settings, service_code)
    return respond(Document(root="service_definition", body=body), out)


@router.post("/requests.{fmt}")
async def create_request(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep, options: OptionsDep
) -> Response:
    out = _format(fmt)
    form = await _form(request)
    key = request.headers.get("Idempotency-Key")
    receipt = service.create_request(session, settings, options, form, key)
    document = Document(root="service_requests", item="request", body=[receipt.model_dump()])
    return respond(document, out)


@router.get("/requests.{fmt}")
def list_requests(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep, options: OptionsDep
) -> Response:
    out = _format(fmt)
    rows = service.list_requests(session, settings, options, _params(request), _base_url(request))
    return respond(Document(root="service_requests", item="request", body=rows), out)


@router.get("/requests/{service_request_id}.{fmt}")
def get_request(
    service_request_id: str,
    fmt: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    options: OptionsDep,
) -> Response:
    out = _format(fmt)
    params: Mapping[str, str] = _params(request)
    rows = service.get_request(
        session, settings, options, service_request_id, params, _base_url(request)
    )
    return respond(Document(root="service_requests", item="request", body=rows), out)


@router.get("/tokens/{token}.{fmt}")
def token(fmt: str, token: str, request: Request, session: SessionDep) -> Response:
    out = _format(fmt)
    rows = service.token_request(session, token, _params(request))
    return respond(Document(root="service_requests", item="request", body=rows), out)


@router.get("/servicerequestupdates.{fmt}")
def list_updates(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep, options: OptionsDep
) -> Response:
    out = _format(fmt)
    rows = service.list_updates(session, settings, options, _params(request), _base_url(request))
    document = Document(root="service_request_updates", item="request_update", body=rows)
    return respond(document, out)


@router.post("/servicerequestupdates.{fmt}")
async def post_update(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep, options: OptionsDep
) -> Response:
    out = _format(fmt)
    form = await _form(request)
    answer = service.post_update(session, settings, options, form)
    document = Document(root="service_request_updates", item="request_update", body=[answer])
    return respond(document, out)


# --- errors in Open311's shape -------------------------------------------------------------------


async def _on_open311(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Open311Error)
    return error_response(request, [exc])


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return error_response(request, [from_problem(exc)])


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error = Open311Error(404, f"no such Open311 resource: {request.url.path}")
    elif exc.status_code == 405:
        error = Open311Error(400, f"method {request.method} is not allowed here")
    else:
        error = Open311Error(400, str(exc.detail))
    return error_response(request, [error])


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, [Open311Error(400, "the request is malformed")])


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error under /open311", exc_info=exc)
    return error_response(request, [Open311Error(500, "general service error: please retry")])


def open311_app(parent: FastAPI) -> FastAPI:
    """The sub-application mounted at `/open311/v2`: it shares the parent's settings,
    database and dependency overrides (tests put their session there)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = parent.state.settings
    app.state.database = parent.state.database
    app.dependency_overrides = parent.dependency_overrides
    app.include_router(router)
    app.add_exception_handler(Open311Error, _on_open311)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)
    return app
