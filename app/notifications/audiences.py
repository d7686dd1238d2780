"""Who hears of each case event, and what each is told to do: the rule as data.

`AUDIENCES` is read by `service.notify_case_event`: for each event kind, the audiences in
order (the people who must act next first), each with its own message. Someone in several
audiences gets one message, the first that applies to them. The actor never hears of their
own step.
"""

from __future__ import annotations

from enum import StrEnum

from app.cases.models import CaseEventKind as K
from app.cases.models import CaseStatus as S


class Audience(StrEnum):
    DISPATCHERS = "dispatchers"  # the command centre's staff whose scope holds the case
    TASK_UNITS = "task_units"  # staff of every unit with an open task on the case
    #: Staff of every unit that had a task the step ended (a cancelled case's units).
    RELEASED_UNITS = "released_units"
    ACTED_UNIT = "acted_unit"  # staff of the unit the step concerned
    #: The reporter and the segment's road chiefs of its first level (the lowest rank): who is
    #: asked, of those who may verify it (`cases.relations.verifiable_cases`).
    VERIFIERS = "verifiers"
    REPORTER = "reporter"
    ESCALATION = "escalation"  # the segment's road chiefs of the level escalated to
    #: Whoever must act on the status the step left the case in (none if it stayed), told
    #: what `NEXT_STEP` says for that status.
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

#: Who must act on a case in each status, and the message that tells them ("{number}" is
#: the case number).
NEXT_STEP: dict[S, tuple[Audience, str]] = {
    S.PENDING_REGISTRATION: (D, "新上报案件 {number} 待立案"),
    S.REGISTERED: (D, "案件 {number} 待派遣"),
    S.DISPATCHED: (TU, "案件 {number} 待本单位签收"),
    S.IN_PROGRESS: (TU, "案件 {number} 待本单位继续处置"),
    S.AWAITING_VERIFICATION: (V, "案件 {number} 已处置完毕，请到现场核查"),
    S.CLOSED: (R, "您上报的案件 {number} 已结案"),
    S.REJECTED: (R, "您上报的案件 {number} 不予立案"),
    S.CANCELLED: (R, "您上报的案件 {number} 已撤销"),
}

#: Event → the audiences in order, each with its message (None: `NEXT_STEP`'s).
AUDIENCES: dict[K, tuple[tuple[Audience, str | None], ...]] = {
    K.REPORTED: ((NX, None),),
    K.DUPLICATE_REPORTED: (),
    K.FIXED_ON_SPOT: ((V, "当场整改案件 {number} 请到现场核查"),),
    K.REGISTERED: (),
    K.REJECTED: ((R, "您上报的案件 {number} 不予立案"),),
    K.DISPATCHED: ((TU, "案件 {number} 已派遣到本单位，请签收"),),
    K.SIGNED_FOR: (),
    K.FED_BACK: ((NX, None),),
    K.VERIFIED: ((R, "您上报的案件 {number} 核查通过，已结案"),),
    K.REWORK: ((TU, "案件 {number} 核查不通过，请返工"),),
    K.RELEASED: ((AU, "案件 {number} 的协办任务已释放，本单位无须再办"), (NX, None)),
    K.URGED: ((TU, "案件 {number} 被督办，请加快处置"),),
    K.CANCELLED: (
        (Audience.RELEASED_UNITS, "案件 {number} 已撤销，本单位无须再办"),
        (R, "您上报的案件 {number} 已撤销"),
    ),
    K.RETURN_REQUESTED: ((D, "案件 {number} 被申请退回，请审核"),),
    K.RETURN_DECIDED: ((AU, "案件 {number} 的退回申请已审核"), (NX, None)),
    K.EXTENSION_REQUESTED: ((D, "案件 {number} 申请延期，请审批"),),
    K.EXTENSION_DECIDED: ((AU, "案件 {number} 的延期申请已审批"),),
    K.HUNG_UP: ((TU, "案件 {number} 已挂账，期限暂停"),),
    K.RESUMED: ((TU, "案件 {number} 恢复处置，期限继续"),),
    K.REOPENED: ((NX, None), (D, "案件 {number} 被重新打开")),
    K.DEADLINE_WARNING: ((AU, "案件 {number} 处置时限将到，请尽快处置"),),
    K.SIGN_FOR_OVERDUE: ((AU, "案件 {number} 签收超时，请立即签收"), (D, "案件 {number} 签收超时")),
    K.OVERDUE: (
        (AU, "案件 {number} 处置超期，已升级，请立即处置"),
        (D, "案件 {number} 处置超期，已升级"),
        (E, "案件 {number} 处置超期，已升级到您，请督办"),
    ),
    K.ESCALATED: (
        (AU, "案件 {number} 超期未办，再次升级，请立即处置"),
        (D, "案件 {number} 超期未办，再次升级"),
        (E, "案件 {number} 超期未办，已升级到您，请督办"),
    ),
    K.VERIFICATION_OVERDUE: (
        (V, "案件 {number} 核查超期，请尽快到现场核查"),
        (D, "案件 {number} 核查超期"),
    ),
    # The summoned units are told by the whistle itself (`whistles.service`), which
    # names the case: one message each, whether the whistle opened a case, joined one or
    # stands alone.
    K.WHISTLE_BLOWN: (),
    K.WHISTLE_REPORTED_IN: ((R, "案件 {number}：部门已报到"),),
    K.WHISTLE_MISSED: (
        (D, "案件 {number}：有部门未按时报到"),
        (R, "案件 {number}：有部门未按时报到"),
    ),
    K.EXTERNAL_UPDATE: (
        (D, "案件 {number}：外部系统（Open311）发来更新，请查看"),
        (TU, "案件 {number}：外部系统（Open311）发来更新，请查看"),
    ),
}
