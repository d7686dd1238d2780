"""Schemathesis calls every operation of the API with generated input, valid and not, as
the demo admin, a road chief and department staff: no answer may be a server error, and
every answer must match the schema the OpenAPI document gives for its status.

The operations come from the committed `openapi/openapi.json` (a test keeps it equal to
the app's). Each operation and user runs in its own test, so the writes the fuzzer makes
(users, webhooks, rule sets, reports...) stay in that test's transaction and are rolled
back; photos it uploads land in the run's temporary media directory. The examples are
few and derandomized (`deterministic`), so the run is the same on every machine and stays
within minutes. No operation is left out: none sleeps or calls out (webhook delivery is the
background job's, which the tests' settings turn off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
#: Generated cases per operation and user (valid and invalid together); a deeper run by
#: hand: ROADCHIEF_FUZZ_EXAMPLES=50 ./scripts/test tests/test_api_fuzz.py
MAX_EXAMPLES = int(os.environ.get("ROADCHIEF_FUZZ_EXAMPLES", "5"))
FUZZ_USERS = ("demo-admin", "demo-chief-3", "demo-staff")

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    # Our users' tokens go in every request; a generated Authorization header would only
    # test the sign-in check, the same 401 for each operation.
    with_security_parameters=False,
)
# The coverage phase sends every boundary value of every parameter: hundreds of requests per
# operation, tens of minutes for the whole API. The generated examples reach the same edges
# (huge ids, year 1 and 9999) often enough; tests/test_crafted_values.py pins those found.
schema.config.phases.coverage.enabled = False
# Stateful sequences follow links the document does not declare; nothing to walk.
schema.config.phases.stateful.enabled = False


@pytest.mark.parametrize("username", FUZZ_USERS)
@schema.parametrize()
@settings(
    deadline=None,
    # The app and its transaction are per test, shared by the test's examples on purpose;
    # the routing documents (taxonomy, rule sets) are large and slow to generate by nature.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
def test_no_operation_answers_a_server_error_or_off_its_schema(
    case: schemathesis.Case,
    app: FastAPI,
    as_user: Callable[[str], dict[str, str]],
    username: str,
) -> None:
    case.call_and_validate(
        app=app,
        headers=as_user(username),
        checks=[not_a_server_error, response_schema_conformance],
    )
