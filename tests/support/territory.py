"""The demo city's territory as shipped (app/demo/data/*.geojson), read without the
database: a layer's features, one feature by its code."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from app.demo.loader import DATA_DIR


@cache
def demo(layer: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads((DATA_DIR / f"{layer}.geojson").read_text("utf-8"))[
        "features"
    ]
    return features


def by_code(layer: str, code: str) -> dict[str, Any]:
    return next(f for f in demo(layer) if f["properties"]["code"] == code)
