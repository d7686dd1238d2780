"""The one weighted mean of assessment (composite scores, rankings, the district score,
corrections), on its own: a missing value is left out and its weight shared, never 0."""

from __future__ import annotations

import pytest

from app.assessment.kpis import weighted_mean


@pytest.mark.parametrize(
    ("parts", "options", "mean"),
    [
        ([(60, 80.0), (40, 90.0)], {}, 84.0),
        ([(60, 80.0), (40, None)], {}, 80.0),  # missing: its weight goes to the rest
        ([(60, None), (40, None)], {}, None),  # nothing to weigh: no mean, not 0
        ([(0, 50.0), (100, None)], {}, None),  # a zero weight counts for nothing
        ([(0, 50.0), (100, 70.0)], {}, 70.0),
        ([(30, 2 / 3), (20, 0.5)], {"scale": 100}, 60.0),
        ([(30, 1.0), (70, None)], {"min_share": 0.4}, None),  # too little of the weight
        ([(40, 1.0), (60, None)], {"min_share": 0.4}, 1.0),
        ([(1, 1 / 3), (2, 1 / 3)], {}, 0.33),  # to 2 places
    ],
)
def test_weighted_mean(parts: list[tuple[float, float | None]], options: dict[str, float],
                       mean: float | None) -> None:  # fmt: skip
    assert weighted_mean(parts, **options) == mean
