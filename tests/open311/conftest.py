"""Open311 fixtures: the GeoReport v2 JSON Schemas; keys and the form poster are in
tests/support/open311.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.support.open311 import make_key  # noqa: F401 - the fixture, for the Open311 tests
from tests.support.open311_schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
#: Where the open311/schema-validation repository's `schema/georeport-v2/*.json` are found:
#: a directory named by ROADCHIEF_OPEN311_SCHEMA_DIR, the shared folder beside the checkout,
#: or a local mirror of the repository (read with git). They are not committed here: that
#: repository carries no licence (see README "Open311"). Where none is found, the answers
#: are checked against tests/support/open311_schemas.py, written from the specification's
#: field lists.
SCHEMA_DIR_VAR = "ROADCHIEF_OPEN311_SCHEMA_DIR"
SHARED_DIR = ROOT.parent / "shared" / "open311-schema-validation" / "georeport-v2"
MIRROR_GIT = Path("/work/.mirror/open311+schema-validation/repo/.git")
#: auto (upstream where found, else ours), upstream (fail without them) or spec (ours).
SOURCE_VAR = "ROADCHIEF_OPEN311_SCHEMAS"
SCHEMA_NAMES = ("service", "services", "service-definition", "request", "requests")


def _read_schema(name: str) -> dict[str, Any] | None:
    for folder in (os.environ.get(SCHEMA_DIR_VAR), SHARED_DIR):
        if folder and (Path(folder) / f"{name}.json").exists():
            return json.loads((Path(folder) / f"{name}.json").read_text(encoding="utf-8"))
    if MIRROR_GIT.exists():
        text = subprocess.run(
            ["git", f"--git-dir={MIRROR_GIT}", "show", f"HEAD:schema/georeport-v2/{name}.json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(text)
    return None


@pytest.fixture(scope="session")
def georeport_schemas() -> dict[str, jsonschema_rs.Validator]:
    """Validators of the upstream schemas, formats (date-time, uri) enforced. The list
    schemas refer to the item schema by file name (`"$ref": "request.json"`), resolved
    through a registry."""
    wanted = os.environ.get(SOURCE_VAR, "auto")
    upstream = {name: _read_schema(name) for name in SCHEMA_NAMES} if wanted != "spec" else {}
    found = bool(upstream) and all(doc is not None for doc in upstream.values())
    if wanted == "upstream" and not found:
        pytest.fail(
            f"{SOURCE_VAR}=upstream, but open311/schema-validation's schemas were not found: "
            f"put its schema/georeport-v2/*.json in {SHARED_DIR} or set {SCHEMA_DIR_VAR}"
        )
    documents: dict[str, Any] = upstream if found else dict(SCHEMAS)
    base = "https://schemas.open311.invalid/georeport-v2/"
    registry = jsonschema_rs.Registry([(base + f"{n}.json", d) for n, d in documents.items()])
    return {
        name: jsonschema_rs.validator_for(
            {"$ref": base + f"{name}.json"}, registry=registry, validate_formats=True
        )
        for name in SCHEMA_NAMES
    }
