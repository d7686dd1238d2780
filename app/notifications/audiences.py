"""Who hears of each case event: the rule as data (the people who must act next first).

`AUDIENCES` is read by `service.notify_case_event`; the actor never hears of their own step.
"""

from __future__ import annotations

from enum import StrEnum

from app.cases.models import CaseEventKind as K


class Audience(StrEnum):
    DISPATCHERS = "dispatchers"  # the command centre's staff whose scope holds the case
    TASK_UNITS = "task_units"  # staff of every unit with an open task on the case
    #: Staff of every unit that had a task the step ended (a cancelled case's units).
    RELEASED_UNITS = "released_units"
    ACTED_UNIT = "acted_unit"  # staff of the unit the step concerned
    #: The reporter and the segment's road chiefs of its first level (the lowest rank): who is
    #: asked. Any chief of the segment, or a supervisor, may verify (`actions._is_verifier`).
    VERIFIERS = "verifiers"
    REPORTER = "reporter"
    ESCALATION = "escalation"  # the segment's road chiefs of the level escalated to
    #: Whoever must act on the status the step left the case in (none if it stayed).
    NEXT_IF_MOVED = "next_if_moved"


D, TU, AU, V, R, E, NX = (
    Audience.DISPATCHERS,
    Audience.TASK_UNITS,
    Audience.ACTED_UNIT,
    Audience.VERIFIERS,
    Audience.REPORTER,
    Audience.ESCALATION,
    Audience.NEXT_IF_MOVED,
)

#: Event → (audiences, the inbox title: "{number}" is the case number).
AUDIENCES: dict[K, tuple[tuple[Audience, ...], str]] = {
    K.REPORTED: ((NX,), "新上报案件 {number} 待立案"),
    K.DUPLICATE_REPORTED: ((), "案件 {number} 被重复上报"),
    K.FIXED_ON_SPOT: ((V,), "当场整改案件 {number} 待核查"),
    K.REGISTERED: ((), "案件 {number} 已立案"),
    K.REJECTED: ((R,), "您上报的案件 {number} 不予立案"),
    K.DISPATCHED: ((TU,), "案件 {number} 已派遣到本单位，请签收"),
    K.SIGNED_FOR: ((), "案件 {number} 已签收"),
    K.FED_BACK: ((NX,), "案件 {number} 已处置，待核查"),
    K.VERIFIED: ((R,), "案件 {number} 核查通过，已结案"),
    K.REWORK: ((TU,), "案件 {number} 核查不通过，须返工"),
    K.RELEASED: ((AU, NX), "案件 {number} 协办任务已释放"),
    K.URGED: ((TU,), "案件 {number} 被督办"),
    K.CANCELLED: ((Audience.RELEASED_UNITS, R), "案件 {number} 已撤销"),
    K.RETURN_REQUESTED: ((D,), "案件 {number} 被申请退回，待审核"),
    K.RETURN_DECIDED: ((AU, NX), "案件 {number} 的退回申请已审核"),
    K.EXTENSION_REQUESTED: ((D,), "案件 {number} 申请延期，待审批"),
    K.EXTENSION_DECIDED: ((AU,), "案件 {number} 的延期申请已审批"),
    K.HUNG_UP: ((TU,), "案件 {number} 已挂账，期限暂停"),
    K.RESUMED: ((TU,), "案件 {number} 恢复处置，期限继续"),
    K.REOPENED: ((NX, D), "案件 {number} 被重新打开"),
    K.DEADLINE_WARNING: ((AU,), "案件 {number} 处置时限将到"),
    K.SIGN_FOR_OVERDUE: ((AU, D), "案件 {number} 签收超时"),
    K.OVERDUE: ((AU, D, E), "案件 {number} 处置超期，已升级"),
    K.ESCALATED: ((AU, D, E), "案件 {number} 超期未办，再次升级"),
    K.VERIFICATION_OVERDUE: ((V, D), "案件 {number} 核查超期"),
    K.WHISTLE_BLOWN: ((TU,), "路长吹哨：案件 {number} 请到现场报到并处置"),
    K.WHISTLE_REPORTED_IN: ((R,), "案件 {number}：部门已报到"),
    K.WHISTLE_MISSED: ((D, R), "案件 {number}：有部门未按时报到"),
    K.EXTERNAL_UPDATE: ((D, TU), "案件 {number}：外部系统（Open311）发来更新"),
}
