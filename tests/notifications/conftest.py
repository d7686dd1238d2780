"""The closed-loop fixtures, shared with the notification stories."""

from tests.cases.conftest import dispatched, loop  # noqa: F401
