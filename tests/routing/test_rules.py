"""The routing engine on its own: which rule wins, and which rule sets are refused."""

from __future__ import annotations

from typing import Any

import pytest

from app.routing.models import DecisionBasis
from app.routing.rules import CategoryNode, CompiledRuleSet, assign, compile_rule_set
from app.routing.schemas import RuleSetDocument
from app.territory.models import RoadGrade

TAXONOMY = {
    "greenery": CategoryNode("greenery", "绿化", None, True, 1),
    "greenery.road": CategoryNode("greenery.road", "道路绿化", "greenery", False, 2),
    "greenery.park": CategoryNode("greenery.park", "公园", "greenery", False, 2),
    "roads": CategoryNode("roads", "道路", None, True, 1),
    "roads.manhole": CategoryNode(
        "roads.manhole", "窨井盖", "roads", False, 2, frozenset({"manhole_cover"})
    ),
}
JURISDICTIONS = {"d": "/d/", "s1": "/d/s1/", "s2": "/d/s2/", "c1": "/d/s1/c1/"}
UNITS = {"centre", "bureau", "parks", "city", "gas", "street-s1"}


def rule(id: str, categories: list[str], lead: list[str], **more: Any) -> dict[str, Any]:
    return {"id": id, "categories": categories, "lead": lead, **more}


def compile_rules(*rules: dict[str, Any]) -> tuple[CompiledRuleSet | None, list[Any]]:
    document = RuleSetDocument.model_validate(
        {"name": "t", "fallback": "centre", "rules": list(rules)}
    )
    return compile_rule_set(document, TAXONOMY, JURISDICTIONS, UNITS)


def compiled(*rules: dict[str, Any]) -> CompiledRuleSet:
    result, errors = compile_rules(*rules)
    assert errors == []
    assert result is not None
    return result


BASE = (rule("G", ["greenery"], ["parks"]), rule("M", ["roads"], ["city"]))


def test_limits_beat_no_limits_and_deeper_jurisdictions_beat_shallower() -> None:
    rules = compiled(
        *BASE,
        rule("trunk", ["greenery.road"], ["bureau"], when={"road_grades": ["trunk"]}),
        rule("s1", ["greenery.road"], ["street-s1"], when={"jurisdictions": ["s1"]}),
        rule("c1", ["greenery.road"], ["city"], when={"jurisdictions": ["c1"]}),
        rule(
            "s1-lanes",
            ["greenery.road"],
            ["territory"],
            when={"jurisdictions": ["s1"], "road_grades": ["back_lane"]},
        ),
    )

    def winner(path: str | None, grade: RoadGrade | None) -> str:
        matched = rules.match("greenery.road", path, grade)
        assert matched is not None
        return matched.id

    assert winner("/d/s2/x/", None) == "G"
    assert winner("/d/s2/x/", RoadGrade.TRUNK) == "trunk"
    assert winner("/d/s1/c9/", None) == "s1"
    assert winner("/d/s1/c1/", None) == "c1"
    assert winner("/d/s1/c1/", RoadGrade.BACK_LANE) == "s1-lanes"
    # Equal limits: the deeper jurisdiction wins over the one written first.
    assert winner("/d/s1/c1/", RoadGrade.TRUNK) == "c1"


def test_territory_means_the_street_office_of_the_point() -> None:
    rules = compiled(
        *BASE,
        rule("lanes", ["greenery.road"], ["territory"], when={"road_grades": ["back_lane"]}),
    )
    got = assign(
        rules,
        "greenery.road",
        jurisdiction_path="/d/s1/c1/",
        road_grade=RoadGrade.BACK_LANE,
        territorial_unit="street-s1",
    )
    assert (got.basis, got.lead) == (DecisionBasis.RULE, ("street-s1",))

    nowhere = assign(
        rules,
        "greenery.road",
        jurisdiction_path="/d/",
        road_grade=RoadGrade.BACK_LANE,
        territorial_unit=None,
    )
    assert (nowhere.basis, nowhere.lead) == (DecisionBasis.FALLBACK, ("centre",))
    assert "no_territorial_unit" in nowhere.notes


def test_asset_owner_leads_and_the_rules_lead_cooperates() -> None:
    rules = compiled(*BASE)
    got = assign(
        rules,
        "roads.manhole",
        jurisdiction_path="/d/s1/",
        road_grade=None,
        territorial_unit="street-s1",
        category_asset_types={"manhole_cover"},
        asset_type="manhole_cover",
        asset_owner="gas",
    )
    assert (got.basis, got.lead, got.cooperating) == (
        DecisionBasis.ASSET_OWNER,
        ("gas",),
        ("city",),
    )

    # A lamp post's owner does not take over a greenery problem reported next to it.
    other = assign(
        rules,
        "greenery.park",
        jurisdiction_path="/d/s1/",
        road_grade=None,
        territorial_unit="street-s1",
        category_asset_types=set(),
        asset_type="lamp_post",
        asset_owner="city",
    )
    assert (other.basis, other.lead) == (DecisionBasis.RULE, ("parks",))
    assert other.notes == ("asset_not_of_category",)


def test_a_category_without_an_unlimited_rule_is_not_covered() -> None:
    _, errors = compile_rules(
        rule("G", ["greenery.road"], ["parks"]),
        rule("P", ["greenery.park"], ["parks"], when={"jurisdictions": ["s1"]}),
        rule("M", ["roads"], ["city"]),
    )
    assert [(e.code, e.loc) for e in errors] == [("category_not_covered", ["rules"])]
    assert "greenery.park" in errors[0].message


@pytest.mark.parametrize(
    ("rules", "unreachable"),
    [
        # The same category and limits twice: the second never acts.
        ((rule("G2", ["greenery"], ["city"]),), ["G2"]),
        # A group rule whose every leaf has its own rule.
        (
            (
                rule("R", ["greenery.road"], ["city"]),
                rule("P", ["greenery.park"], ["city"]),
            ),
            ["G"],
        ),
        # Limited to s1's lanes, shadowed by a rule for all of the district's lanes written
        # first? No: deeper jurisdiction wins, so this one is reachable.
        (
            (
                rule("d-lanes", ["greenery.road"], ["city"], when={"jurisdictions": ["d"]}),
                rule("s1-lanes", ["greenery.road"], ["city"], when={"jurisdictions": ["s1"]}),
            ),
            [],
        ),
        # Limited to the district and then to the same district again.
        (
            (
                rule("d1", ["greenery.park"], ["city"], when={"jurisdictions": ["d"]}),
                rule("d2", ["greenery.park"], ["bureau"], when={"jurisdictions": ["d"]}),
            ),
            ["d2"],
        ),
    ],
)
def test_unreachable_rules_are_named(
    rules: tuple[dict[str, Any], ...], unreachable: list[str]
) -> None:
    _, errors = compile_rules(*BASE, *rules)
    found = [e for e in errors if e.code == "unreachable_rule"]
    assert [e.message.split("“")[1].split("”")[0] for e in found] == unreachable


def test_every_reference_is_checked_and_every_problem_reported() -> None:
    _, errors = compile_rules(
        rule("G", ["greenery", "greenery.nope"], ["parks", "ghost"], cooperating=["parks"]),
        rule("G", ["roads"], ["city"], when={"jurisdictions": ["s9"]}),
        rule("M", ["roads"], ["territory"]),
    )
    assert sorted((e.code, tuple(e.loc)) for e in errors) == [
        ("duplicate_rule_id", ("rules", 1, "id")),
        ("unit_listed_twice", ("rules", 0, "cooperating", 0)),
        ("unknown_category", ("rules", 0, "categories", 1)),
        ("unknown_jurisdiction", ("rules", 1, "when", "jurisdictions", 0)),
        ("unknown_unit", ("rules", 0, "lead", 1)),
    ]


def test_responsible_units_are_kept_as_data_and_given_no_task() -> None:
    rules = compiled(
        rule(
            "G",
            ["greenery"],
            ["parks"],
            cooperating=["territory"],
            responsible=["bureau", "city", "territory"],
        ),
        rule("M", ["roads"], ["city"], responsible=["bureau", "gas"]),
    )
    got = assign(
        rules,
        "greenery.park",
        jurisdiction_path="/d/s1/",
        road_grade=None,
        territorial_unit="street-s1",
    )
    assert (got.lead, got.cooperating) == (("parks",), ("street-s1",))
    assert got.rule is not None
    assert got.rule.responsible == ("bureau", "city", "territory")

    # A named asset's owner leads and the rule's lead cooperates; the responsible units
    # of the work item still get nothing.
    manhole = assign(
        rules,
        "roads.manhole",
        jurisdiction_path="/d/s1/",
        road_grade=None,
        territorial_unit="street-s1",
        category_asset_types={"manhole_cover"},
        asset_type="manhole_cover",
        asset_owner="gas",
    )
    assert (manhole.lead, manhole.cooperating) == (("gas",), ("city",))


def test_responsible_units_are_checked_like_the_others() -> None:
    _, errors = compile_rules(
        rule("G", ["greenery"], ["parks"], responsible=["ghost", "parks", "territory"]),
        rule("M", ["roads"], ["city"]),
    )
    assert sorted((e.code, tuple(e.loc)) for e in errors) == [
        ("unit_listed_twice", ("rules", 0, "responsible", 1)),
        ("unknown_unit", ("rules", 0, "responsible", 0)),
    ]
