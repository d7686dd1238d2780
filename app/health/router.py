"""`/healthz`: the process answers. `/readyz`: the database answers, its schema is at
head and the photo store answers. `/metrics`: Prometheus, for operators only."""

from __future__ import annotations

import os
from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import Request, Response
from pydantic import BaseModel, Field

from app.core.deps import DatabaseDep, SettingsDep
from app.core.errors import Problem, problem_responses
from app.core.metrics import exposition, is_operator
from app.core.routes import api_router
from app.core.schema import schema_heads
from app.media.service import media_storage

router = api_router(tags=["health"])


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ok"
    database: str
    schema_revision: str | None = Field(
        default=None, description="Operators only (ROADCHIEF_METRICS_NETWORKS or _TOKEN)."
    )


class NotReady(Problem):
    """503 with `not_ready`: each part that is not ready (`database`, `migrations`,
    `photo_store`) and why; revisions and errors only for operators."""

    code = "not_ready"
    status = 503
    title = "服务尚未就绪"


class MetricsForbidden(Problem):
    code = "metrics_forbidden"
    status = 403
    title = "无权读取监控指标"


@router.get("/healthz", summary="Liveness: the process is up", response_model=Health)
async def healthz() -> Health:
    # async: nothing here blocks, so no hop to the thread pool (bench/README.md, `overhead`)
    return Health()


def _photo_store_error(settings: Any) -> str | None:
    try:
        storage = media_storage(settings)
        storage.exists("readyz/probe")  # a round trip to the store, whatever it is
        temp = getattr(storage, "temp_dir", None)
        if temp is not None and not os.access(temp(), os.W_OK):
            return "not writable"
    except Exception as exc:  # any failure of the store means "not ready"
        return type(exc).__name__
    return None


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated to head, photo store answering",
    response_model=Readiness,
    responses=problem_responses(NotReady),
)
def readyz(request: Request, database: DatabaseDep, settings: SettingsDep) -> Readiness:
    operator = is_operator(request, settings)
    missing: list[dict[str, str]] = []
    current: set[str] = set()
    try:
        with database.read_engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        missing.append({"component": "database", "detail": "数据库无法连接"})
        if operator:
            missing[-1]["error"] = type(exc).__name__
    expected = schema_heads()
    if not missing and current != expected:
        missing.append({"component": "migrations", "detail": "数据库结构不是程序要求的版本"})
        if operator:
            missing[-1].update(
                current=",".join(sorted(current)), expected=",".join(sorted(expected))
            )
    if (store_error := _photo_store_error(settings)) is not None:
        missing.append({"component": "photo_store", "detail": "照片存储无法访问"})
        if operator:
            missing[-1]["error"] = store_error
    if missing:
        hint = "，请执行 roadchief db upgrade" if missing[0]["component"] == "migrations" else ""
        raise NotReady(
            "未就绪：" + "、".join(m["component"] for m in missing) + hint, not_ready=missing
        )
    return Readiness(
        database=database.engine.dialect.name,
        schema_revision=",".join(sorted(current)) if operator else None,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (operators: ROADCHIEF_METRICS_NETWORKS or a bearer token)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problem_responses(MetricsForbidden),
    },
)
def metrics(request: Request, settings: SettingsDep) -> Response:
    if not is_operator(request, settings):
        raise MetricsForbidden("仅运维地址或持有监控令牌者可读取 /metrics")
    body, content_type = exposition(request.app.state.metrics_registry)
    return Response(body, media_type=content_type)
