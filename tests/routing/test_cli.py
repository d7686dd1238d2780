"""A city's IT office sets up routing from the shell: taxonomy, tables, versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.routing.models import RuleSet, RuleSetStatus

UNITS = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "geometry": None, "properties": p}
        for p in (
            {"code": "centre", "name": "指挥中心", "kind": "command_centre"},
            {"code": "city", "name": "城管局", "kind": "functional_department"},
            {"code": "parks", "name": "园林局", "kind": "functional_department"},
        )
    ],
}
TAXONOMY = {
    "defaults": {
        "urgency": "normal",
        "photo_required": True,
        "time_limits": {
            u: {"sign_for": 1, "handle": 8, "verify": 4} for u in ("critical", "urgent", "normal")
        },
    },
    "categories": [
        {
            "code": "green",
            "name": "绿化",
            "name_en": "Greenery",
            "children": [{"code": "green.tree", "name": "行道树", "name_en": "Street tree"}],
        }
    ],
}


def rule_set(lead: str) -> dict[str, Any]:
    return {
        "name": f"分工（{lead}）",
        "fallback": "centre",
        "rules": [{"id": "T", "categories": ["green"], "lead": [lead]}],
    }


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    text = yaml.safe_dump(data, allow_unicode=True) if name.endswith(".yaml") else json.dumps(data)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_routing_is_set_up_and_switched_from_the_shell(empty_database: Any, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, list(args))

    assert run("territory", "import", "units", write(tmp_path, "u.json", UNITS)).exit_code == 0
    taxonomy = run("routing", "import-taxonomy", write(tmp_path, "t.yaml", TAXONOMY))
    assert taxonomy.exit_code == 0, taxonomy.output
    assert "2 created" in taxonomy.output

    refused = run("routing", "upload", write(tmp_path, "bad.yaml", rule_set("ghosts")))
    assert refused.exit_code == 1
    assert "unknown_unit" in refused.output

    assert (
        run(
            "routing", "upload", write(tmp_path, "a.yaml", rule_set("parks")), "--activate"
        ).exit_code
        == 0
    )
    assert run("routing", "upload", write(tmp_path, "b.json", rule_set("city"))).exit_code == 0
    assert run("routing", "activate", "2", "--reason", "改由城管局").exit_code == 0
    rolled = run("routing", "rollback")
    assert rolled.exit_code == 0, rolled.output
    assert "v1" in rolled.output
    listed = run("routing", "list").output.splitlines()
    assert listed[0].split()[:2] == ["v2", "retired"]
    assert listed[1].split()[:2] == ["v1", "active"]

    with empty_database.sessions() as session:
        statuses = dict(session.execute(select(RuleSet.version, RuleSet.status)).all())
    assert statuses == {1: RuleSetStatus.ACTIVE, 2: RuleSetStatus.RETIRED}
