"""The closed-loop stories' case, from tests/support/cases.py."""

from tests.support.cases import dispatched, loop  # noqa: F401
