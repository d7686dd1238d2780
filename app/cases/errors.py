"""The refusals of a step (案件办理): each a `Problem` with a stable `code`, so the API and
the console answer them alike."""

from __future__ import annotations

from app.core.errors import Problem


class VersionRequired(Problem):
    code = "version_required"
    status = 428
    title = "请在 If-Match 或 version 中给出您看到的案件版本"


class VersionConflict(Problem):
    code = "version_conflict"
    status = 409
    title = "案件已被他人更新，请刷新后再操作"


class TransitionNotAllowed(Problem):
    code = "transition_not_allowed"
    status = 409
    title = "当前状态下不能执行该操作"


class NoTaskForUnit(Problem):
    code = "no_task_for_unit"
    status = 409
    title = "本单位在该案件上没有可办理的任务"


class NoteRequired(Problem):
    code = "note_required"
    status = 422
    title = "该操作须填写说明"


class PhotosRequired(Problem):
    code = "photos_required"
    status = 422
    title = "该操作须附照片"


class LocationRequired(Problem):
    code = "location_required"
    status = 422
    title = "该操作须在现场进行，请提供当前位置"


class TooFarFromCase(Problem):
    code = "too_far_from_case"
    status = 422
    title = "离案件位置太远，请到现场核查"


class UnitRequired(Problem):
    code = "unit_required"
    status = 422
    title = "请指明该操作针对的单位（unit_code）"


class ReasonRequired(Problem):
    code = "reason_required"
    status = 422
    title = "请从给定的理由中选择一项（reason）"


class DecisionRequired(Problem):
    code = "decision_required"
    status = 422
    title = "请给出决定：同意（approved: true）或不同意（approved: false）"


class DeadlineRequired(Problem):
    code = "deadline_required"
    status = 422
    title = "请给出新的期限（new_due_at）"


class DeadlineInPast(Problem):
    code = "deadline_in_past"
    status = 422
    title = "新的期限不能早于现在"


class DeadlineNotLater(Problem):
    code = "deadline_not_later"
    status = 422
    title = "延期后的期限须晚于当前期限"


class DeadlineTooFar(Problem):
    code = "deadline_too_far"
    status = 422
    title = "新的期限太远"


class ExtensionPending(Problem):
    code = "extension_pending"
    status = 409
    title = "已有延期申请在审批中"


class NoExtensionRequest(Problem):
    code = "no_extension_request"
    status = 409
    title = "没有待审批的延期申请"


class ReopenWindowPassed(Problem):
    code = "reopen_window_passed"
    status = 409
    title = "已超过可重新打开的期限"
