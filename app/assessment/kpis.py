"""The case KPIs (考核指标) as data: each one's name, formula and direction, read by the
code that computes them, by `GET /api/v1/assessment/kpi-definitions` and by `docs/kpis.md`.

Every figure of a period is computed from the cases reported in it, as they stood at the
period's end (or now, for a period still running): only events before that moment count.
So a period's figures never change when later events arrive. "On time" is judged by the
deadline sweep's marks: a step is on time when no overdue mark for that unit came before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    Count("reports", "上报数", "期内收到的上报（含重复上报），计入其案件所属的行"),
    Count("cases", "案件数", "期内上报形成的案件（含撤销的）"),
    Count("registered", "立案数", "期末前已立案（含当场整改、吹哨直派）且期末前未撤销的案件"),
    Count("rejected", "不予立案数", "期末前不予立案的案件"),
    Count("cancelled", "撤销数",
          "期末前撤销的案件：作废，不计入立案数、结案数和各项比率，其任务只计入派遣数和退回数"),
    Count("dispatched", "派遣数",
          "期末前派遣过的任务（每个单位在每件案件上计一件），含此后释放、退回的"),
    Count("released", "释放数", "期末时处于指挥中心释放状态的协办任务（随案件撤销结束的不算）"),
    Count("to_handle", "应处置任务数",
          "派遣数中期末时既未释放、也未获准退回、所属案件也未撤销的任务：单位的排名基数"),
    Count("fed_back", "处置数", "应处置任务中期末前已反馈的"),
    Count("closed", "结案数", "期末时处于已结案状态的案件"),
    Count("overdue", "超期数", "应处置任务中期末前被标记处置超期的"),
    Count("returns_upheld", "退回（同意）数", "期末前指挥中心同意退回的次数（含此后又派回的）"),
    Count("returns_refused", "退回（不同意）数", "期末前指挥中心驳回退回申请的次数"),
    Count("extensions", "延期数", "应处置任务中期末前获批的延期次数"),
    Count("whistles_due", "应报到数", "期内吹哨、报到时限已到的部门召集"),
)  # fmt: skip

RATES: tuple[Rate, ...] = (
    Rate("on_time_sign_for", "按时签收率",
         "应处置任务中：按时签收的 ÷（已签收的 + 签收超时仍未签收的）",
         "signed_on_time", "sign_for_due"),
    Rate("on_time_handling", "按期处置率",
         "应处置任务中：按期反馈的 ÷（已反馈的 + 超期仍未反馈的）",
         "fed_back_on_time", "handling_due"),
    Rate("closure", "结案率", "结案数 ÷ 立案数", "closed", "registered"),
    Rate("on_time_closure", "按期结案率", "期末前没有任何超期标记即结案的案件 ÷ 立案数",
         "closed_on_time", "registered"),
    Rate("rework", "返工率", "核查不通过返工过的案件 ÷ 有任务反馈过的案件（均为立案数中的）",
         "reworked", "cases_fed_back", "lower"),
    Rate("extension", "延期率", "延期数 ÷ 应处置任务数", "extensions", "to_handle", "lower"),
    Rate("whistle_on_time", "按时报到率", "按时报到的部门召集 ÷ 应报到数",
         "whistles_on_time", "whistles_due"),
)  # fmt: skip
RATE_CODES = {r.code for r in RATES}

HANDLING_TIME = (
    "处置用时（工作小时）：应处置任务从派遣至其首次反馈的工作时间（反馈时按工作日历算出，"
    "含节假日、调休上班日，随反馈事件保存），取中位数与第 90 百分位（线性插值）"
)
#: A score needs rates carrying at least this share of the weights (see `SCORE`).
MIN_SCORED_SHARE = 0.4
SCORE = (
    "综合指标值 = Σ 权重 × 指标值 ÷ Σ 有值指标的权重 × 100；返工率、延期率取 (1 − 值)。"
    "某项无分母（如无任务到期）时为空：是缺失，不是 0，也不是 100%；不计入，其权重按比例分给"
    "其余有值指标。有值指标的权重之和不足全部权重的 "
    f"{MIN_SCORED_SHARE:.0%} 时，综合指标值为空（依据太少，不打分）。比率保留 4 位小数，"
    "综合指标值由保留后的比率算出，保留 2 位小数"
)
UNITS = (
    "按单位统计时，一件案件的案件指标（上报数、案件数、立案数、撤销数、结案数、返工率等）计入"
    "该案件自己在期末前最近一次派遣（或开立该案件的吹哨直派；吹哨并入已有案件不是派遣）所列的"
    "第一个单位（牵头单位）；该单位此后退回"
    "获指挥中心同意的，案件在再次派遣前不计入任何单位（只计入合计）。任务指标计入承办任务的"
    "单位：每个单位在每件案件上计一件任务，再次派遣接续同一任务，按期末前该单位的全部事件统计"
    "（首次签收、首次反馈、首次超时标记）。期末时已释放、退回已获同意或所属案件已撤销的任务"
    "不是该单位应处置的工作：只计入派遣数（释放的另计释放数、获准退回的另计退回（同意）数），"
    "不计入签收、处置、超期、延期、处置用时和各项比率。"
)
RANKED = (
    "排名基数：单位为应处置任务数，街道、社区、路段、类别为立案数。基数少于 "
    "`ROADCHIEF_ASSESSMENT_MIN_CASES`（默认 5）或综合指标值为空的行列出但不排名（rank 为空）；"
    "“未关联”行不排名。"
)


class BadWeights(Problem):
    code = "bad_weights"
    status = 422
    title = "权重设置有误"


def parse_weights(text: str | Mapping[str, float]) -> dict[str, float]:
    """'on_time_handling:30,closure:20,...' → weights by rate code, which must sum to 100.
    Weights already parsed (the settings' `assessment_weights`) are checked the same way."""
    try:
        weights = named_numbers(text) if isinstance(text, str) else dict(text)
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
    #: (median, 90th percentile) of the hours when the database computed them (PostgreSQL's
    #: `percentile_cont`: the same interpolation as `statistics.quantiles(method="inclusive")`)
    #: instead of sending each task's.
    hours_percentiles: tuple[float, float] | None = None

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
        if self.hours_percentiles is not None:
            return (round(self.hours_percentiles[0], 2), round(self.hours_percentiles[1], 2))
        if not self.hours:
            return None, None
        p90 = quantiles(self.hours, n=10, method="inclusive")[-1] if len(self.hours) > 1 else None
        return round(median(self.hours), 2), round(p90 if p90 is not None else self.hours[0], 2)


def weighted_mean(
    parts: Iterable[tuple[float, float | None]], *, scale: float = 1, min_share: float = 0
) -> float | None:
    """Σ weight × value ÷ Σ weight (加权平均) over the (weight, value) parts that have a value
    and a weight, times `scale`, to 2 places: the one mean of scores, ranks and corrections.
    A part without a value is left out, its weight shared among the others (missing is not
    0). None when no part counts, or when those that do carry less than `min_share` of all
    the weights."""
    total = weight = every = 0.0
    for w, value in parts:
        every += w
        if value is not None and w > 0:
            total += w * value
            weight += w
    if weight == 0 or weight < min_share * every:
        return None
    return round(total / weight * scale, 2)


def score(rates: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """The composite score out of 100 (综合指标值); see `SCORE`."""
    better = {r.code: r.better for r in RATES}

    def value(code: str) -> float | None:
        rate = rates.get(code)
        return rate if rate is None or better[code] == "higher" else 1 - rate

    return weighted_mean(((w, value(code)) for code, w in weights.items()), scale=100,
                         min_share=MIN_SCORED_SHARE)  # fmt: skip


def definitions() -> Iterable[tuple[str, str, str, str]]:
    """(code, name, formula, better) of every KPI, counts first."""
    for c in COUNTS:
        yield c.code, c.name, c.formula, "count"
    for r in RATES:
        yield r.code, r.name, r.formula, r.better


PERIOD = (
    "考核期内上报形成的案件，按期末（进行中的考核期按当前）之前的事件计算；期末之后的事件"
    "不改变已结束考核期的数字。“按时”“按期”以超期巡检的标记为准：某单位在某案件上的首次签收"
    "早于它在该案件上的首次签收超时标记（或没有该标记）即为按时签收；首次反馈早于首次处置超期"
    "标记（或没有）即为按期处置。按期结案：期末时已结案，且期末前该案件没有任何处置超期标记。"
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
        f"**Departments (按单位).** {UNITS}",
        "",
        f"**Composite score (综合指标值).** {SCORE}",
        "",
        f"**Ranking (排名).** {RANKED}",
        "",
        "Weights are `ROADCHIEF_ASSESSMENT_WEIGHTS` (or `weights=` on a query); they must sum",
        "to 100.",
        "",
    ]
    return "\n".join(lines)
