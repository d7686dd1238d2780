"""Fixtures shared with the Open311 tests."""

from tests.support.open311 import make_key

__all__ = ["make_key"]
