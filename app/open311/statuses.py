"""The mySociety extended statuses (FixMyStreet's Open311 updates) against the workflow.

Each case status (and, for a rejection, its reason) reads as one extended status; the
basic Open311 status is `closed` for a finished case and `open` otherwise. An update an
external system posts must describe the stage the case is in: the basic status of its
state, or exactly its extended status. Any other status would move the case, and moves
are the workflow's steps, taken in roadchief by the centre and the units with their
evidence (photos on site, verification within reach): such an update is refused.
"""

from __future__ import annotations

from app.cases.models import FINISHED_STATUSES, Case, CaseStatus

#: Every status the extension defines (lower case; clients may send upper case).
EXTENDED_STATUSES = (
    "open",
    "closed",
    "fixed",
    "in_progress",
    "action_scheduled",
    "investigating",
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
)

#: How each stage of the closed loop reads to an Open311 client.
STAGE_STATUS: dict[CaseStatus, str] = {
    CaseStatus.PENDING_REGISTRATION: "open",
    CaseStatus.REGISTERED: "investigating",
    CaseStatus.DISPATCHED: "action_scheduled",
    CaseStatus.IN_PROGRESS: "in_progress",
    CaseStatus.AWAITING_VERIFICATION: "in_progress",  # handled, not yet verified on site
    CaseStatus.HUNG_UP: "action_scheduled",  # 挂账: set aside, deadlines paused
    CaseStatus.CLOSED: "fixed",  # closed only after a verification on site
    CaseStatus.REJECTED: "no_further_action",
    CaseStatus.CANCELLED: "closed",
}

#: A rejection reads by its reason (不予立案: invalid, duplicate, out of scope).
REJECTION_STATUS = {
    "invalid": "no_further_action",
    "duplicate": "duplicate",
    "out_of_scope": "not_councils_responsibility",
}


def basic_status(status: CaseStatus) -> str:
    return "closed" if status in FINISHED_STATUSES else "open"


def extended_status(status: CaseStatus, reject_reason: str | None = None) -> str:
    if status is CaseStatus.REJECTED and reject_reason in REJECTION_STATUS:
        return REJECTION_STATUS[reject_reason]
    return STAGE_STATUS[status]


def update_fits(case: Case, posted: str, reject_reason: str | None) -> bool:
    """Whether a posted status describes the case as it stands (see the module doc)."""
    return posted in (basic_status(case.status), extended_status(case.status, reject_reason))
