"""Each domain's settings are parsed once, at start, into the values its code uses: a bad
rule stops the start naming its variable. README's "Configuration" stays true to them:
every variable is in its table, and the table of where each is declared names the module
that declares it."""

from __future__ import annotations

import inspect
import re
from datetime import time
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from app.core.config import SettingsError
from app.patrols.settings import PatrolDuty
from app.settings import Settings, get_settings
from app.territory.models import ExcellenceGrade

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The two read without the prefix too; README names them so.
BARE = {"database_url": "DATABASE_URL", "database_read_url": "DATABASE_READ_URL"}


def _variable(field: str) -> str:
    return BARE.get(field, f"ROADCHIEF_{field.upper()}")


def _declared_in(field: str) -> str:
    """The file of the settings class that declares `field` (not the composition)."""
    owner = next(c for c in reversed(Settings.__mro__) if field in inspect.get_annotations(c))
    return str(Path(inspect.getfile(owner)).relative_to(ROOT))


def _where_rows() -> list[tuple[list[str], str]]:
    """(variable patterns, file) of each row of the "declared in" table."""
    table = README.split("| variables | declared in |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        names, where = line.strip("|").rsplit("|", 1)
        rows.append((re.findall(r"`([A-Z0-9_*]+)`", names), where.strip().split("`")[1]))
    return rows


def test_every_variable_is_documented() -> None:
    missing = [_variable(f) for f in Settings.model_fields if f"`{_variable(f)}`" not in README]
    assert not missing, f"README's Configuration table lacks {missing}"


def test_the_readme_says_where_each_variable_is_declared() -> None:
    rows = _where_rows()
    for field in Settings.model_fields:
        variable = _variable(field)
        exact = [where for names, where in rows if variable in names]
        wild = [where for names, where in rows if any(fnmatchcase(variable, n) for n in names)]
        found = exact or wild
        assert found == [_declared_in(field)], (variable, found, _declared_in(field))


def test_the_composition_keeps_every_domains_checks() -> None:
    """Each domain's validators reach the composed `Settings`: two of one name in two
    domains would let one silently replace the other."""
    composed = Settings.__pydantic_decorators__
    for base in Settings.__mro__[1:]:
        own = getattr(base, "__pydantic_decorators__", None)
        if own is None:
            continue
        for kind in ("field_validators", "model_validators"):
            for name, found in getattr(own, kind).items():
                assert getattr(composed, kind)[name].info == found.info, (base.__name__, name)


def test_lists_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADCHIEF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8, 10.20.0.0/16")
    monkeypatch.setenv("ROADCHIEF_TRUSTED_PROXIES", "10.0.0.5")
    monkeypatch.setenv("ROADCHIEF_METRICS_NETWORKS", "")
    settings = Settings()
    assert [str(n) for n in settings.webhook_allowed_networks] == ["127.0.0.0/8", "10.20.0.0/16"]
    assert settings.trusted_proxies == ("10.0.0.5",)
    assert settings.metrics_networks == ()


def test_rules_are_parsed_once_into_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADCHIEF_PATROL_DUTIES", "1:daily:1:any,3:weekly:2")
    monkeypatch.setenv("ROADCHIEF_WORKING_HOURS", "09:00-12:00, 13:00-17:00")
    monkeypatch.setenv("ROADCHIEF_ASSESSMENT_GROUP_WEIGHTS", "units:40,streets:60")
    settings = Settings()
    assert settings.patrol_duties == {
        1: PatrolDuty("daily", 1, "any"),
        3: PatrolDuty("weekly", 2, "each"),
    }
    assert settings.working_hours == ((time(9), time(12)), (time(13), time(17)))
    assert settings.assessment_group_weights == {"streets": 60.0, "units": 40.0}
    defaults = Settings()
    assert defaults.shop_credit_rules == {
        "visit_failed_item": -2.0, "visit_passed": 1.0, "red_flag": 5.0, "black_flag": -10.0
    }  # fmt: skip
    assert defaults.excellence_thresholds == {
        ExcellenceGrade.ULTIMATE: 95.0,
        ExcellenceGrade.OUTSTANDING: 90.0,
        ExcellenceGrade.EXCELLENT: 85.0,
    }
    assert sum(defaults.assessment_weights.values()) == 100


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ROADCHIEF_ASSESSMENT_WEIGHTS", "closure:50", "权重之和应为 100"),
        ("ROADCHIEF_ASSESSMENT_WEIGHTS", "closure:60,speed:40", "speed:40"),
        ("ROADCHIEF_ASSESSMENT_RANKING_WEIGHTS", "cases:60", "cases:N,inspections:M"),
        ("ROADCHIEF_SHOP_CREDIT_RULES", "visit_passed:1", "every reason needs a value"),
        ("ROADCHIEF_PATROL_DUTIES", "4:daily:1", "level:daily|weekly"),
        ("ROADCHIEF_WORKING_HOURS", "13:00-12:00", "in order"),
        ("ROADCHIEF_EXCELLENCE_THRESHOLDS", "great:90", "ultimate"),
        ("ROADCHIEF_EXCELLENCE_THRESHOLDS", "ultimate:-5", "not negative"),
    ],
)
def test_a_bad_rule_stops_the_start_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert f"{variable}: " in str(refused.value)
    assert says in str(refused.value)
