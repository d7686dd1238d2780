"""The closed-loop fixtures, shared with the whistle stories."""

from tests.cases.conftest import loop  # noqa: F401
