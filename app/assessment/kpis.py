"""The case KPIs (考核指标) as data: each one's name, formula and direction, read by the
code that computes them, by `GET /api/v1/assessment/kpi-definitions` and by `docs/kpis.md`.

Every figure of a period is computed from the cases reported in it, as they stood at the
period's end (or now, for a period still running): only events before that moment count.
So a period's figures never change when later events arrive. "On time" is judged by the
deadline sweep's marks: a step is on time when no overdue mark for that unit came before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median, quantiles
from typing import Literal

from app.core.config import named_numbers
from app.core.errors import Problem


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate KPI: numerator / denominator, and which way is better."""

    code: str
    name: str
    formula: str
    numerator: str
    denominator: str
    better: Literal["higher", "lower"] = "higher"


@dataclass(frozen=True, slots=True)
class Count:
    code: str
    name: str
    formula: str


COUNTS: tuple[Count, ...] = (
    Count("reports", "上报数", "期内收到的上报（含重复上报）"),
    Count("cases", "案件数", "期内上报形成的案件"),
    Count("registered", "立案数", "期末前已立案的案件（含当场整改、吹哨直派）"),
    Count("rejected", "不予立案数", "期末前不予立案的案件"),
    Count("dispatched", "派遣数", "期末前派遣的任务（每个承办单位一件）"),
    Count("fed_back", "处置数", "期末前已反馈的任务"),
    Count("closed", "结案数", "期末时处于已结案状态的案件"),
    Count("overdue", "超期数", "期末前被标记处置超期的任务"),
    Count("returns_upheld", "退回（同意）数", "期末前指挥中心同意的退回申请"),
    Count("returns_refused", "退回（不同意）数", "期末前指挥中心驳回的退回申请"),
    Count("extensions", "延期数", "期末前获批延期的任务"),
    Count("whistles_due", "应报到数", "期内吹哨、报到时限已到的部门召集"),
)

RATES: tuple[Rate, ...] = (
    Rate("on_time_sign_for", "按时签收率", "按时签收的任务 ÷（已签收 + 签收超时仍未签收的任务）",
         "signed_on_time", "sign_for_due"),
    Rate("on_time_handling", "按期处置率", "按期反馈的任务 ÷（已反馈 + 超期仍未反馈的任务）",
         "fed_back_on_time", "handling_due"),
    Rate("closure", "结案率", "结案数 ÷ 立案数", "closed", "registered"),
    Rate("on_time_closure", "按期结案率", "未超期即结案的案件 ÷ 立案数",
         "closed_on_time", "registered"),
    Rate("rework", "返工率", "核查不通过返工的案件 ÷ 已反馈的案件", "reworked",
         "cases_fed_back", "lower"),
    Rate("extension", "延期率", "获批延期的任务 ÷ 派遣数", "extensions", "dispatched", "lower"),
    Rate("whistle_on_time", "按时报到率", "按时报到的部门召集 ÷ 应报到数",
         "whistles_on_time", "whistles_due"),
)  # fmt: skip
RATE_CODES = {r.code for r in RATES}

HANDLING_TIME = (
    "处置用时（工作小时）：任务派遣至首次反馈的工作时间，取中位数与第 90 百分位；"
    "按工作日历计算（节假日、调休上班日）"
)
SCORE = (
    "综合指标值 = Σ 权重 × 指标值 ÷ Σ 有值指标的权重 × 100；返工率、延期率取 (1 − 值)。"
    "某项无分母（如无任务到期）时不计入，其权重按比例分给其余指标"
)


class BadWeights(Problem):
    code = "bad_weights"
    status = 422
    title = "权重设置有误"


def parse_weights(text: str) -> dict[str, float]:
    """'on_time_handling:30,closure:20,...' → weights by rate code, which must sum to 100."""
    try:
        weights = named_numbers(text)
        wrong = [f"{c}:{w:g}" for c, w in weights.items() if c not in RATE_CODES or w < 0]
    except ValueError as exc:
        wrong = [str(exc)]
    if wrong:
        raise BadWeights(
            f"“{wrong[0]}”无效：应为“指标:权重”，指标为 {'、'.join(sorted(RATE_CODES))} 之一，"
            "权重不为负、每项一次",
            weight=wrong[0],
        )
    total = sum(weights.values())
    if abs(total - 100) > 1e-6:
        raise BadWeights(f"权重之和应为 100，现为 {total:g}", total=total)
    return weights


@dataclass(slots=True)
class Tally:
    """What a group of cases and tasks adds up to over a period."""

    counts: dict[str, int] = field(default_factory=dict)
    hours: list[float] = field(default_factory=list)

    def add(self, name: str, n: int | bool = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    def rates(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for rate in RATES:
            below = self.get(rate.denominator)
            out[rate.code] = round(self.get(rate.numerator) / below, 4) if below else None
        return out

    def handling_hours(self) -> tuple[float | None, float | None]:
        if not self.hours:
            return None, None
        p90 = quantiles(self.hours, n=10, method="inclusive")[-1] if len(self.hours) > 1 else None
        return round(median(self.hours), 2), round(p90 if p90 is not None else self.hours[0], 2)


def score(rates: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """The composite score out of 100 (综合指标值); see `SCORE`."""
    better = {r.code: r.better for r in RATES}
    total = weight = 0.0
    for code, w in weights.items():
        value = rates.get(code)
        if value is None or w == 0:
            continue
        total += w * (value if better[code] == "higher" else 1 - value)
        weight += w
    return round(total / weight * 100, 2) if weight else None


def definitions() -> Iterable[tuple[str, str, str, str]]:
    """(code, name, formula, better) of every KPI, counts first."""
    for c in COUNTS:
        yield c.code, c.name, c.formula, "count"
    for r in RATES:
        yield r.code, r.name, r.formula, r.better


PERIOD = (
    "考核期内上报形成的案件，按期末（进行中的考核期按当前）时的事件计算；期末之后的事件"
    "不改变已结束考核期的数字。“按时”“按期”以超期巡检的标记为准：某单位的签收或反馈之前"
    "没有该单位的超时标记，即为按时。"
)


def kpi_markdown(weights: dict[str, float]) -> str:
    """docs/kpis.md: every KPI's formula, from the tables above."""
    lines = [
        "# Case KPIs (考核指标)",
        "",
        "Generated from `app/assessment/kpis.py` by `roadchief assessment doc`; a test keeps",
        "it current. `GET /api/v1/assessment/kpi-definitions` serves the same table.",
        "",
        f"**Period (考核期).** {PERIOD}",
        "",
        "| code | name | formula | better | default weight |",
        "| --- | --- | --- | --- | --- |",
    ]
    for code, name, formula, better in definitions():
        weight = weights.get(code)
        shown = "" if weight is None else f"{weight:g}"
        lines.append(f"| `{code}` | {name} | {formula} | {better} | {shown} |")
    lines += [
        "",
        f"**Handling time.** {HANDLING_TIME}",
        "",
        f"**Composite score (综合指标值).** {SCORE}",
        "",
        "Weights are `ROADCHIEF_ASSESSMENT_WEIGHTS` (or `weights=` on a query); they must sum",
        "to 100. A street, segment or category with fewer than `ROADCHIEF_ASSESSMENT_MIN_CASES`",
        "registered cases (a department: tasks dispatched) is listed but not ranked.",
        "",
    ]
    return "\n".join(lines)
