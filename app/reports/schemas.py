"""Report schemas: what the phone sends and what it gets back."""

from __future__ import annotations

from copy import copy
from typing import TYPE_CHECKING, Annotated, Any, Optional

from fastapi import UploadFile
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    create_model,
    model_validator,
)

from app.cases.models import CaseStatus
from app.cases.schemas import CaseEventOut, HandleDueAt, Stage, StageDueAt
from app.core.coords import CoordinateSystem, PointIn
from app.core.errors import ProblemBody
from app.core.inputs import DatabaseId, Moment
from app.core.moments import LocalMoment
from app.media.schemas import PhotoOut
from app.reports.models import PhotoRole
from app.routing.models import Urgency
from app.routing.schemas import CategoryCode, ChiefBrief, UnitBrief
from app.standards.service import NationalCode
from app.territory.schemas import Code, LocatedAsset, PlaceRef

IdempotencyKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[\x21-\x7e]+$")
]


class PhotoRef(BaseModel):
    """A photo uploaded beforehand (`POST /api/v1/photos`)."""

    model_config = ConfigDict(extra="forbid")

    photo_id: DatabaseId
    role: PhotoRole = PhotoRole.BEFORE


class ReportIn(PointIn):
    """A problem as the phone reports it, where it is (the point is kept as sent too)."""

    model_config = ConfigDict(extra="forbid")

    category_code: CategoryCode | None = Field(
        default=None,
        examples=["roads.manhole"],
        description="The taxonomy's leaf category; or name it by `national_code`.",
    )
    national_code: NationalCode | None = Field(
        default=None,
        examples=["event:0401"],
        description="The category's class in the deployment's national edition (国标分类), "
        "instead of `category_code` (or with it, then both must name the same category).",
    )
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ] = Field(examples=["人行道上窨井盖破损，有塌陷危险"])
    accuracy_m: float | None = Field(default=None, ge=0, description="GPS accuracy, metres.")
    asset_code: Code | None = Field(default=None, examples=["MH-GAS-000001"])
    urgency: Urgency | None = Field(default=None, description="The category's default if absent.")
    device_time: Moment = Field(
        description="When the phone made the report (offline reports are sent later).",
        examples=["2026-11-23T09:30:00+08:00"],
    )
    photos: list[PhotoRef] = Field(default_factory=list, max_length=30)
    fixed_on_spot: bool = Field(
        default=False,
        description="能改则改: already fixed (needs an `after` photo); goes to verification.",
    )
    duplicate_of: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None,
        description="A case number from `GET /api/v1/cases/nearby`: this report joins it.",
    )
    patrol_id: DatabaseId | None = Field(
        default=None, description="The reporter's patrol during which it was found (巡查上报)."
    )

    @model_validator(mode="after")
    def _names_a_category(self) -> ReportIn:
        if self.category_code is None and self.national_code is None:
            raise ValueError("须给出问题类别 category_code 或国标分类 national_code")
        return self


class LinkedReportIn(ReportIn):
    """A report from another system that keeps its photos itself: Open311's `media_url`,
    the city's platform's photo links. The links count as the problem's photo and are never
    fetched. Not taken by the phone's API, whose reports carry photos."""

    media_urls: list[HttpUrl] = Field(default_factory=list, max_length=30)


class ReportPhotoOut(BaseModel):
    role: PhotoRole
    photo: PhotoOut
    exif_distance_m: float | None = Field(description="EXIF position to the reported point.")
    exif_age_hours: float | None = Field(description="EXIF capture time to the report.")
    taken_far_away: bool
    taken_long_before: bool


class SegmentBrief(BaseModel):
    code: str
    name: str
    distance_m: float
    chiefs: list[ChiefBrief]


class ReportReceipt(BaseModel):
    """What the phone is told: the case, who it went to, and the deadline."""

    report_id: int
    received_at: LocalMoment
    case_number: str
    case_status: CaseStatus
    duplicate: bool = Field(description="Joined an open case of the same problem (并案).")
    fixed_on_spot: bool
    lon: float = Field(description="WGS 84.")
    lat: float
    street: PlaceRef | None
    community: PlaceRef | None
    grid_cell_code: str | None
    segment: SegmentBrief | None
    nearby_assets: list[LocatedAsset]
    lead_units: list[UnitBrief]
    cooperating_units: list[UnitBrief]
    territorial_unit: UnitBrief | None
    handle_due_at: HandleDueAt
    stage: Stage
    stage_due_at: StageDueAt
    photos: list[ReportPhotoOut]


class ReportSummary(BaseModel):
    report_id: int
    received_at: LocalMoment
    category_code: str
    description: str
    case_number: str
    case_status: CaseStatus
    duplicate: bool
    fixed_on_spot: bool
    thumbnail_url: str | None


class ReportDetail(ReportReceipt):
    category_code: str
    national_code: str | None = Field(
        description="The category's class in the deployment's national edition; null where "
        "its table has no code."
    )
    description: str
    urgency: Urgency
    device_time: LocalMoment
    coordinate_system: CoordinateSystem
    input_lon: float
    input_lat: float
    accuracy_m: float | None
    asset_code: str | None
    case_visible: bool = Field(
        description="Whether the caller may see the report's case. When not (a report made "
        "outside the caller's scope), the case's routing, deadline and history are left out."
    )
    history: list[CaseEventOut]


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey = Field(description="The key the phone gave this report.")
    report: dict[str, Any] = Field(
        description="A report as `POST /api/v1/reports` takes it (`ReportIn`). Checked item "
        "by item: one malformed report is answered with its own problem and does not hold "
        "up the rest of the queue."
    )


class BatchIn(BaseModel):
    """A queue of reports made offline, each with its own key: safe to resend whole."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(min_length=1, max_length=100)


class BatchItemResult(BaseModel):
    idempotency_key: str
    status: int = Field(description="201 created, 200 replayed, or the problem's status.")
    receipt: ReportReceipt | None = None
    problem: ProblemBody | None = None


class BatchOut(BaseModel):
    items: list[BatchItemResult]


def _form_fields() -> dict[str, Any]:
    """`ReportIn`'s fields as form fields (its photo references excepted: the form carries
    the photos themselves). The ones a report needs are optional here only because the
    deprecated `report` field may carry them instead; `ReportIn` checks them after."""
    fields: dict[str, Any] = {}
    for name, field in ReportIn.model_fields.items():
        if name == "photos":
            continue
        if field.is_required():
            optional = Field(
                default=None,
                description=" ".join(
                    filter(None, [field.description, "Required (unless sent in `report`)."])
                ),
                examples=field.examples,
            )
            fields[name] = (Optional[field.annotation], optional)  # noqa: UP045 (a value, not a hint)
        else:
            fields[name] = (field.annotation, copy(field))
    return fields


class ReportFormBase(BaseModel):
    """A report as multipart/form-data: its fields one by one, with the photos as files."""

    report: str | None = Field(
        default=None,
        description="Deprecated: the whole report as JSON (the body of `POST /reports`), "
        "instead of the fields one by one. Not both.",
        json_schema_extra={"deprecated": True},
    )
    photos: list[UploadFile] = Field(default_factory=list, description="Photos of the problem.")
    after_photos: list[UploadFile] = Field(
        default_factory=list, description="Photos after fixing it on the spot."
    )

    def fields_sent(self) -> set[str]:
        """The report's own fields this form carries one by one."""
        return self.model_fields_set - {"report", "photos", "after_photos"}


if TYPE_CHECKING:
    ReportForm = ReportFormBase
else:
    ReportForm = create_model(
        "ReportForm",
        __base__=ReportFormBase,
        __doc__=ReportFormBase.__doc__,
        __module__=__name__,
        **_form_fields(),
    )
