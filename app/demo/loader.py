"""Loading the demo city through the same import pipeline a real city uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.standards.identifiers import national_id_issues
from app.territory.importer import Layer, import_layer
from app.territory.models import Jurisdiction
from app.territory.schemas import ImportResult

if TYPE_CHECKING:
    from app.settings import Settings

DATA_DIR = Path(__file__).resolve().parent / "data"


def territory_is_empty(session: Session) -> bool:
    return not session.execute(select(exists().where(Jurisdiction.id.isnot(None)))).scalar()


def demo_layers(scale: float = 1.0) -> dict[str, Any]:
    """The shipped files at scale 1, a freshly generated city at any other scale."""
    if scale == 1.0 and (DATA_DIR / "jurisdictions.geojson").exists():
        return {
            layer.value: json.loads((DATA_DIR / f"{layer.value}.geojson").read_text("utf-8"))
            for layer in Layer
        }
    from app.demo.citygen import generate_city

    return generate_city(scale)


def load_demo_city(
    session: Session, settings: Settings, scale: float = 1.0
) -> Iterator[ImportResult]:
    """Import every layer in order; each layer is one all-or-nothing transaction."""
    layers = demo_layers(scale)
    for layer in Layer:
        yield import_layer(session, settings, layer, layers[layer.value], national_id_issues)
