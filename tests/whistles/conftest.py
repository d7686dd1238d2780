"""The closed-loop fixtures, shared with the whistle stories."""

from tests.support.cases import loop  # noqa: F401
