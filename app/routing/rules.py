"""The routing engine: a rule set checked against the deployment, compiled, and matched.

Pure functions over plain data, so the same code validates an upload, decides a route
and is tested without a database. Which rule wins where several match:

1. the one with more limits (`when`: a jurisdiction subtree, road grades);
2. then the one limited to the deeper jurisdiction;
3. then the one naming the category more exactly (a leaf beats its group);
4. then the one written first.

A rule that loses everywhere it applies is unreachable, and a rule set with one is
refused: it would be a rule that an admin believes in and that never acts.

Who gets a task on a case: the winning rule's `lead` and `cooperating` units (the units
that must act on every case of its categories), with a named asset's owner leading ahead
of them. Its `responsible` list, the work item's 责任单位 across the district, is kept
for campaigns and assessment and never assigned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.core.errors import FieldError
from app.routing.models import DecisionBasis
from app.routing.schemas import TERRITORY, RuleSetDocument, RuleWhen
from app.territory.models import RoadGrade


@dataclass(frozen=True, slots=True)
class CategoryNode:
    """What routing and intake need to know of a category."""

    code: str
    name: str
    parent_code: str | None
    is_group: bool
    depth: int
    asset_types: frozenset[str] = frozenset()
    active: bool = True
    default_urgency: str = "normal"
    photo_required: bool = False
    #: {urgency: {"sign_for": h, "handle": h, "verify": h}}, working hours.
    time_limits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


Taxonomy = Mapping[str, CategoryNode]


def category_lineage(taxonomy: Taxonomy, code: str) -> list[str]:
    """The category and its groups, leaf first."""
    lineage: list[str] = []
    node: CategoryNode | None = taxonomy.get(code)
    while node is not None:
        lineage.append(node.code)
        node = taxonomy.get(node.parent_code) if node.parent_code else None
    return lineage


def active_leaves(taxonomy: Taxonomy) -> list[str]:
    return [c.code for c in taxonomy.values() if c.active and not c.is_group]


def _path_depth(path: str) -> int:
    return path.count("/") - 1


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a rule applies: jurisdiction subtrees and road grades (None: anywhere)."""

    jurisdiction_paths: tuple[str, ...] | None = None
    road_grades: frozenset[RoadGrade] | None = None

    @property
    def specificity(self) -> int:
        return (self.jurisdiction_paths is not None) + (self.road_grades is not None)

    @property
    def jurisdiction_depth(self) -> int:
        if self.jurisdiction_paths is None:
            return 0
        return min((_path_depth(p) for p in self.jurisdiction_paths), default=0)

    def matches(self, jurisdiction_path: str | None, road_grade: RoadGrade | None) -> bool:
        if self.jurisdiction_paths is not None and not (
            jurisdiction_path is not None
            and any(jurisdiction_path.startswith(p) for p in self.jurisdiction_paths)
        ):
            return False
        return self.road_grades is None or road_grade in self.road_grades

    def contains(self, other: Scope) -> bool:
        """Whether every point `other` applies to, this applies to as well."""
        if self.jurisdiction_paths is not None and (
            other.jurisdiction_paths is None
            or not all(
                any(p.startswith(mine) for mine in self.jurisdiction_paths)
                for p in other.jurisdiction_paths
            )
        ):
            return False
        return self.road_grades is None or (
            other.road_grades is not None and other.road_grades <= self.road_grades
        )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    position: int
    id: str
    item: str | None
    #: Who gets a task on each case: the lead(s) and the units that must act as well.
    lead: tuple[str, ...]
    cooperating: tuple[str, ...]
    scope: Scope
    #: The work item's responsible units (责任单位): data only, never a task.
    responsible: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Candidate:
    rule: CompiledRule
    category_depth: int

    @property
    def rank(self) -> tuple[int, int, int, int]:
        scope = self.rule.scope
        return (
            scope.specificity,
            scope.jurisdiction_depth,
            self.category_depth,
            -self.rule.position,
        )


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    """A valid rule set ready to match: per leaf category, its rules best first."""

    fallback: str
    asset_owner_leads: bool
    candidates: Mapping[str, tuple[CompiledRule, ...]]

    def match(
        self, leaf_code: str, jurisdiction_path: str | None, road_grade: RoadGrade | None
    ) -> CompiledRule | None:
        for rule in self.candidates.get(leaf_code, ()):
            if rule.scope.matches(jurisdiction_path, road_grade):
                return rule
        return None


@dataclass
class _Checker:
    """Collects every problem of a rule set, so the admin can fix them in one go."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, loc: Sequence[str | int], code: str, message: str) -> None:
        self.errors.append(FieldError(loc=list(loc), code=code, message=message))


def compile_rule_set(
    document: RuleSetDocument,
    taxonomy: Taxonomy,
    jurisdiction_paths: Mapping[str, str],
    unit_codes: Collection[str],
    *,
    strict: bool = True,
) -> tuple[CompiledRuleSet | None, list[FieldError]]:
    """Check the document against the deployment and compile it.

    Strict (uploads, activation): returns the compiled rule set, or None and every
    problem found: unknown units, categories or jurisdictions, repeated ids, categories
    without a rule that applies everywhere, and unreachable rules.

    Lenient (deciding with the active version after the deployment changed under it):
    always compiles, leaving out what no longer exists, so a report is routed (to the
    fallback at worst) and never refused for an admin's later change.
    """
    check = _Checker()
    if document.fallback == TERRITORY or document.fallback not in unit_codes:
        check.add(["fallback"], "unknown_unit", f"兜底单位“{document.fallback}”不存在")

    def known(codes: Iterable[str]) -> tuple[str, ...]:
        """The codes in order, once each; lenient: only units that still exist."""
        return tuple(c for c in dict.fromkeys(codes) if strict or c == TERRITORY or c in unit_codes)

    rules: list[CompiledRule] = []
    covers: dict[str, list[_Candidate]] = {}
    seen_ids: set[str] = set()
    for i, rule in enumerate(document.rules):
        if rule.id in seen_ids:
            check.add(["rules", i, "id"], "duplicate_rule_id", f"规则编号“{rule.id}”重复")
        seen_ids.add(rule.id)
        _check_units(check, i, rule.lead, rule.cooperating, rule.responsible, unit_codes)
        scope = _scope(check, i, rule.when, jurisdiction_paths)
        compiled = CompiledRule(
            position=i,
            id=rule.id,
            item=rule.item,
            lead=known(rule.lead),
            cooperating=tuple(c for c in known(rule.cooperating) if c not in rule.lead),
            scope=scope,
            responsible=tuple(c for c in known(rule.responsible) if c not in rule.lead),
        )
        rules.append(compiled)
        # A rule naming a group and one of its leaves applies at the leaf's depth.
        depth_by_leaf: dict[str, int] = {}
        for j, code in enumerate(rule.categories):
            node = taxonomy.get(code)
            if node is None or not node.active:
                check.add(
                    ["rules", i, "categories", j],
                    "unknown_category",
                    f"问题类别“{code}”不存在或已停用",
                )
                continue
            for leaf in _leaves_under(taxonomy, code):
                depth_by_leaf[leaf] = max(depth_by_leaf.get(leaf, 0), node.depth)
        for leaf, depth in depth_by_leaf.items():
            covers.setdefault(leaf, []).append(_Candidate(compiled, depth))

    ordered = {
        leaf: sorted(cands, key=lambda c: c.rank, reverse=True) for leaf, cands in covers.items()
    }
    result = CompiledRuleSet(
        fallback=document.fallback,
        asset_owner_leads=document.asset_owner_leads,
        candidates={leaf: tuple(c.rule for c in cands) for leaf, cands in ordered.items()},
    )
    if not strict:
        return result, check.errors
    for leaf in uncovered_leaves(result, taxonomy):
        check.add(
            ["rules"],
            "category_not_covered",
            f"问题类别“{leaf}”（{taxonomy[leaf].name}）没有不带限定条件的规则，"
            "限定范围以外的问题将无人处置",
        )
    for compiled in rules:
        shadow = _shadowing_rule(compiled, ordered)
        if shadow is not None:
            check.add(
                ["rules", compiled.position],
                "unreachable_rule",
                f"规则“{compiled.id}”永远不会生效：它适用的每个类别和范围，规则“{shadow.id}”都优先",
            )
    return (None, check.errors) if check.errors else (result, [])


def uncovered_leaves(rules: CompiledRuleSet, taxonomy: Taxonomy) -> list[str]:
    """Active leaf categories with no rule that applies everywhere."""
    return [
        leaf
        for leaf in active_leaves(taxonomy)
        if not any(r.scope.specificity == 0 for r in rules.candidates.get(leaf, ()))
    ]


def _leaves_under(taxonomy: Taxonomy, code: str) -> Iterable[str]:
    node = taxonomy[code]
    if not node.is_group:
        yield code
        return
    for child in taxonomy.values():
        if child.parent_code == code and child.active:
            yield from _leaves_under(taxonomy, child.code)


def _check_units(
    check: _Checker,
    i: int,
    lead: Sequence[str],
    cooperating: Sequence[str],
    responsible: Sequence[str],
    unit_codes: Collection[str],
) -> None:
    lists = (("lead", lead), ("cooperating", cooperating), ("responsible", responsible))
    for key, codes in lists:
        for j, code in enumerate(codes):
            if code != TERRITORY and code not in unit_codes:
                check.add(["rules", i, key, j], "unknown_unit", f"单位“{code}”不存在")
    for key, codes, what in (
        ("cooperating", cooperating, "协办单位"),
        ("responsible", responsible, "责任单位"),
    ):
        for j, code in enumerate(codes):
            if code in lead:
                check.add(
                    ["rules", i, key, j],
                    "unit_listed_twice",
                    f"单位“{code}”已是牵头单位，不能同时列为{what}",
                )


def _scope(
    check: _Checker, i: int, when: RuleWhen | None, jurisdiction_paths: Mapping[str, str]
) -> Scope:
    if when is None:
        return Scope()
    paths: list[str] = []
    for j, code in enumerate(when.jurisdictions or ()):
        if code not in jurisdiction_paths:
            check.add(
                ["rules", i, "when", "jurisdictions", j],
                "unknown_jurisdiction",
                f"辖区“{code}”不存在",
            )
        else:
            paths.append(jurisdiction_paths[code])
    return Scope(
        jurisdiction_paths=tuple(paths) if when.jurisdictions is not None else None,
        road_grades=frozenset(when.road_grades) if when.road_grades is not None else None,
    )


def _shadowing_rule(
    rule: CompiledRule, ordered: Mapping[str, Sequence[_Candidate]]
) -> CompiledRule | None:
    """A rule that beats `rule` wherever `rule` applies, or None if `rule` ever acts."""
    shadow: CompiledRule | None = None
    applies_somewhere = False
    for cands in ordered.values():
        ranks = [k for k, c in enumerate(cands) if c.rule is rule]
        if not ranks:
            continue
        applies_somewhere = True
        better = next(
            (c.rule for c in cands[: ranks[0]] if c.rule.scope.contains(rule.scope)), None
        )
        if better is None:
            return None
        shadow = better
    return shadow if applies_somewhere else None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The units a decision names, and why."""

    basis: DecisionBasis
    rule: CompiledRule | None
    lead: tuple[str, ...]
    cooperating: tuple[str, ...]
    #: Codes of what shaped the result beyond the rule: for the explanation.
    notes: tuple[str, ...] = ()


def assign(
    rules: CompiledRuleSet,
    leaf_code: str,
    *,
    jurisdiction_path: str | None,
    road_grade: RoadGrade | None,
    territorial_unit: str | None,
    category_asset_types: Collection[str] = (),
    asset_type: str | None = None,
    asset_owner: str | None = None,
) -> Assignment:
    """Who must act on a problem of `leaf_code` at a place with these facts.

    The matched rule's lead and cooperating units act (its `responsible` list does not);
    `territory` becomes the point's street office; an asset's owner takes the lead when
    the category concerns that kind of asset (the rule's leads then cooperate); with no
    rule, the fallback unit takes it.
    """
    notes: list[str] = []
    rule = rules.match(leaf_code, jurisdiction_path, road_grade)

    def resolve(codes: Iterable[str]) -> list[str]:
        out: list[str] = []
        for code in codes:
            if code == TERRITORY:
                if territorial_unit is None:
                    notes.append("no_territorial_unit")
                    continue
                code = territorial_unit
            if code not in out:
                out.append(code)
        return out

    lead = resolve(rule.lead) if rule else []
    cooperating = resolve(rule.cooperating) if rule else []
    basis = DecisionBasis.RULE
    if (
        asset_owner is not None
        and rules.asset_owner_leads
        and asset_type in category_asset_types
        and lead[:1] != [asset_owner]
    ):
        cooperating = [*lead, *cooperating]
        lead = [asset_owner]
        basis = DecisionBasis.ASSET_OWNER
    elif asset_owner is not None and asset_type not in category_asset_types:
        notes.append("asset_not_of_category")
    if not lead:
        lead = [rules.fallback]
        basis = DecisionBasis.FALLBACK
    cooperating = [c for c in dict.fromkeys(cooperating) if c not in lead]
    return Assignment(basis, rule, tuple(lead), tuple(cooperating), tuple(notes))
