"""The object-storage stories' fixtures: an S3 server on loopback, a bucket per test, and
phones on an app whose photos live in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.database import Database
from app.core.deps import get_db_session
from app.main import create_app
from app.settings import Settings
from tests.support import Headers
from tests.support.s3 import bucket, in_s3, s3_endpoint  # noqa: F401 - fixtures


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str, bucket: str) -> Settings:  # noqa: F811
    return in_s3(settings, s3_endpoint, bucket)


@pytest.fixture
def s3_phone(
    s3_settings: Settings, demo_database: Database, session: Session, as_user: Headers
) -> Iterator[Callable[..., TestClient]]:
    """A phone of `username` on an app whose photos are in the test's bucket (settings
    changed by keyword: `s3_phone("demo-chief-3", photo_delivery="proxy")`)."""
    clients: list[TestClient] = []

    def make(username: str = "demo-chief-3", **changes: Any) -> TestClient:
        app = create_app(s3_settings.model_copy(update=changes), demo_database)
        app.dependency_overrides[get_db_session] = lambda: session
        client = TestClient(
            app, raise_server_exceptions=False, headers=as_user(username) if username else {}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
