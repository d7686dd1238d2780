"""The report stories' app with changed settings; their steps are in tests/support/reports.py."""

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


@pytest.fixture
def app_with(
    settings: Settings, demo_database: Database, session: Session
) -> Iterator[Callable[..., TestClient]]:
    """A client on an app with changed settings (limits), signed in as `demo-chief-3`."""
    clients: list[TestClient] = []

    def make(headers: dict[str, str], **changes: Any) -> TestClient:
        app = create_app(settings.model_copy(update=changes), demo_database)
        app.dependency_overrides[get_db_session] = lambda: session
        client = TestClient(app, raise_server_exceptions=False, headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
