"""`/healthz`: the process answers. `/readyz`: the database answers and its schema is at head."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.core.deps import DatabaseDep
from app.core.errors import ServiceUnavailable, problem_responses
from app.core.schema import schema_heads

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ok"
    database: str
    schema_revision: str


@router.get("/healthz", summary="Liveness: the process is up", response_model=Health)
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="Readiness: the database is reachable and migrated to head",
    response_model=Readiness,
    responses=problem_responses(ServiceUnavailable),
)
def readyz(database: DatabaseDep) -> Readiness:
    try:
        with database.read_engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        raise ServiceUnavailable("数据库无法连接") from exc
    expected = schema_heads()
    if current != expected:
        raise ServiceUnavailable(
            f"数据库结构版本 {sorted(current) or '空'} 与程序要求的 {sorted(expected)} 不一致，"
            "请执行 roadchief db upgrade"
        )
    return Readiness(
        database=database.engine.dialect.name, schema_revision=",".join(sorted(current))
    )
