"""The closed-loop fixtures, shared with the assessment stories."""

from tests.cases.conftest import dispatched, loop  # noqa: F401
