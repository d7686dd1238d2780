"""Fixtures shared with the Open311 tests."""

from tests.open311.conftest import make_key

__all__ = ["make_key"]
