"""The closed-loop fixtures, shared with the notification stories; loopback receivers."""

from ipaddress import ip_network

import pytest

from app.settings import Settings
from tests.support.cases import dispatched, loop  # noqa: F401

#: The test receivers listen on loopback, which webhooks may reach only when allowed.
LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    """The suite's settings, with loopback allowed for webhooks (the receivers are here)."""
    return settings.model_copy(update={"webhook_allowed_networks": LOOPBACK})
