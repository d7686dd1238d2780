"""Routing schemas: the taxonomy and rule-set documents admins upload, and decisions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.coords import PointIn
from app.core.errors import FieldError
from app.core.inputs import DatabaseId
from app.core.moments import LocalMoment
from app.routing.models import DecisionBasis, RuleSetStatus, Urgency
from app.territory.models import AssetType, RoadGrade, UnitKind
from app.territory.schemas import Code, LocatedAsset, PlaceRef

CategoryCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=64
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Hours = Annotated[float, Field(gt=0, le=2000, description="Working hours.")]

#: In a rule's `lead` or `cooperating` list: the street office where the point lies.
TERRITORY = "territory"


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- taxonomy ------------------------------------------------------------------------------


class TimeLimits(_Document):
    """Time limits of one urgency, in working hours (签收 / 处置 / 核查)."""

    sign_for: Hours
    handle: Hours
    verify: Hours


class NationalClass(_Document):
    """Place in the national classification of 管理部件和事件 (GB/T 30428.2)."""

    kind: Literal["component", "event"] = Field(description="部件 (component) or 事件 (event).")
    major: Text = Field(description="大类 name.", examples=["公用设施"])
    minor: Text | None = Field(default=None, description="小类 name.", examples=["井盖"])
    major_code: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] | None = None
    minor_code: Annotated[str, StringConstraints(pattern=r"^\d{2,4}$")] | None = None


class CategoryIn(_Document):
    """One node of an uploaded taxonomy; unset values are inherited from the parent."""

    code: CategoryCode = Field(
        description="Stable code; a child's starts with its parent's and a dot.",
        examples=["roads.manhole"],
    )
    name: Text = Field(examples=["窨井盖缺失、破损、移位"])
    name_en: Text = Field(examples=["Missing, broken or displaced manhole cover"])
    description: LongText | None = None
    urgency: Urgency | None = None
    photo_required: bool | None = None
    time_limits: dict[Urgency, TimeLimits] | None = None
    asset_types: list[AssetType] = Field(
        default_factory=list, description="Asset types whose owner leads on this problem."
    )
    national: NationalClass | None = None
    items: list[Annotated[str, StringConstraints(max_length=16)]] = Field(
        default_factory=list, description="Work items of the plans it comes from."
    )
    children: list[CategoryIn] = Field(default_factory=list, max_length=200)


class TaxonomyDefaults(_Document):
    urgency: Urgency
    photo_required: bool
    time_limits: dict[Urgency, TimeLimits]

    @model_validator(mode="after")
    def _every_urgency(self) -> TaxonomyDefaults:
        missing = [u.value for u in Urgency if u not in self.time_limits]
        if missing:
            raise ValueError(f"默认时限缺少紧急程度：{', '.join(missing)}")
        return self


class TaxonomyDocument(_Document):
    """A whole taxonomy: what `PUT /api/v1/admin/routing/taxonomy` takes."""

    defaults: TaxonomyDefaults
    categories: list[CategoryIn] = Field(min_length=1, max_length=200)


class CategoryOut(BaseModel):
    """A category with everything inherited already resolved."""

    code: str = Field(examples=["roads.manhole"])
    parent_code: str | None = Field(examples=["roads"])
    is_group: bool
    name: str
    name_en: str
    description: str | None
    default_urgency: Urgency
    photo_required: bool
    time_limits: dict[Urgency, TimeLimits]
    asset_types: list[AssetType]
    national: NationalClass | None
    items: list[str]
    active: bool


class TaxonomyOut(BaseModel):
    """Every category, parents before children, in the uploaded order."""

    categories: list[CategoryOut]


class TaxonomyImportResult(BaseModel):
    created: int
    updated: int
    deactivated: int
    uncovered: list[str] = Field(
        description="Leaves the active routing table has no rule for: until a new version "
        "covers them, their reports go to the table's fallback unit."
    )


# --- rule sets -----------------------------------------------------------------------------


class RuleWhen(_Document):
    """Limits of a rule; a rule with limits beats one without where both match."""

    jurisdictions: list[Code] | None = Field(
        default=None,
        min_length=1,
        description="Only points inside these jurisdiction subtrees.",
        examples=[["410199001"]],
    )
    road_grades: list[RoadGrade] | None = Field(
        default=None,
        min_length=1,
        description="Only points whose nearest road segment has one of these grades.",
        examples=[["back_lane"]],
    )

    @model_validator(mode="after")
    def _not_empty(self) -> RuleWhen:
        if self.jurisdictions is None and self.road_grades is None:
            raise ValueError("when 至少须限定 jurisdictions 或 road_grades 之一，否则请删去 when")
        return self


class RuleIn(_Document):
    """Problem categories → who acts on each case, and who answers for the work item.

    `lead` (牵头单位) and `cooperating` (协办) get a task on every case the rule routes;
    `responsible` (责任单位) is the plan's list for the work item as a whole, kept for
    campaigns and assessment and never given a task by routing.
    """

    id: Code = Field(description="Unique within the rule set.", examples=["H18"])
    item: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = Field(
        default=None, description="The work item of the plan it comes from.", examples=["18."]
    )
    categories: list[CategoryCode] = Field(
        min_length=1, description="Leaves or groups (a group covers all its leaves)."
    )
    lead: list[Code] = Field(
        min_length=1,
        max_length=10,
        description="Units leading every case (牵头单位), main lead first; "
        f"`{TERRITORY}` is the street office where the point lies.",
    )
    cooperating: list[Code] = Field(
        default_factory=list,
        max_length=60,
        description="Units that must act on every case as well (协办): only those the plan "
        f"makes act on each case of this kind; `{TERRITORY}` as in `lead`.",
        examples=[[TERRITORY]],
    )
    responsible: list[Code] = Field(
        default_factory=list,
        max_length=60,
        description="The work item's responsible units (责任单位) as the plan lists them, "
        f"besides its lead; `{TERRITORY}` stands for every street office (各镇（街道）). "
        "Data for campaigns and assessment: routing gives them no task.",
        examples=[["housing-construction", "transport", TERRITORY]],
    )
    when: RuleWhen | None = None
    note: LongText | None = Field(
        default=None, description="Why the rule names these units (the plan's words)."
    )


class RuleSetDocument(_Document):
    """A deployment's routing table: what `POST /api/v1/admin/routing/rule-sets` takes."""

    name: Text = Field(examples=["惠济区城市精细化管理任务分工"])
    description: LongText | None = None
    source: Text | None = Field(default=None, examples=["郑州市惠济区人民政府，2019-12-20"])
    fallback: Code = Field(
        description="Unit that gets whatever no rule covers (the command centre).",
        examples=["command-centre"],
    )
    asset_owner_leads: bool = Field(
        default=True,
        description="An asset's owner takes the lead on its category's problems.",
    )
    rules: list[RuleIn] = Field(min_length=1, max_length=2000)


class RuleSetSummary(BaseModel):
    version: int
    name: str
    status: RuleSetStatus
    rule_count: int
    document_sha256: str
    uploaded_at: LocalMoment
    uploaded_by: str | None
    activated_at: LocalMoment | None


class RuleSetOut(RuleSetSummary):
    document: RuleSetDocument


class RuleSetCheck(BaseModel):
    """The outcome of validating a rule set without storing it."""

    valid: bool
    errors: list[FieldError]


class ActivateIn(_Document):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


# --- decisions -----------------------------------------------------------------------------


class RouteRequest(PointIn):
    """A problem to route: what it is, where (the point), and (optionally) which asset."""

    model_config = ConfigDict(extra="forbid")

    category_code: CategoryCode = Field(examples=["roads.manhole"])
    asset_code: Code | None = Field(default=None, examples=["MH-GAS-000001"])
    rule_set_version: DatabaseId | None = Field(
        default=None,
        description="Dry runs only: try a draft or an old version instead of the active one.",
    )


class UnitBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # a Unit row as it is

    code: str
    name: str
    kind: UnitKind


class ChiefBrief(BaseModel):
    level: int
    user_id: int
    display_name: str


class SegmentFact(BaseModel):
    code: str
    name: str
    grade: RoadGrade
    distance_m: float
    chiefs: list[ChiefBrief]


class AssetFact(BaseModel):
    code: str
    asset_type: AssetType
    owner_unit_code: str
    distance_m: float


class RoutingFacts(BaseModel):
    """Everything the decision looked at."""

    lon: float = Field(description="WGS 84 (converted when the point was sent in GCJ-02).")
    lat: float
    category_code: str
    category_path: list[str] = Field(description="The category and its groups, leaf first.")
    street: PlaceRef | None
    community: PlaceRef | None
    grid_cell_code: str | None
    segment: SegmentFact | None
    asset: AssetFact | None = Field(description="The asset the report names, with its owner.")
    nearby_assets: list[LocatedAsset] = Field(
        default_factory=list, description="Assets near the point (部件), nearest first."
    )


class MatchedRule(BaseModel):
    id: str
    item: str | None


class RoutingProposal(BaseModel):
    """Who must act and why (分拨建议): the units a dispatch gives a task each, unless the
    centre names others. `id` is null for a dry run (nothing was stored)."""

    id: int | None
    decided_at: LocalMoment
    rule_set_version: int | None
    rule_set_name: str | None
    basis: DecisionBasis
    matched_rule: MatchedRule | None
    lead_units: list[UnitBrief] = Field(description="牵头单位: first is the main lead.")
    cooperating_units: list[UnitBrief] = Field(
        description="协办单位: the units that must act on the case as well."
    )
    territorial_unit: UnitBrief | None = Field(
        description="属地: the street office (块) where the point lies; it has a task only "
        "when it is also a lead or cooperating unit."
    )
    explanation: list[str] = Field(description="The decision step by step, in Chinese.")


class RoutingDecisionOut(RoutingProposal):
    """A routing decision with the facts it looked at."""

    category_code: str
    facts: RoutingFacts
