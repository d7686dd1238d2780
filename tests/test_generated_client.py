"""The OpenAPI document as client generators read it: openapi-python-client (a maintained
generator) turns `openapi/openapi.json` into a typed Python client, and the pothole story
(report, register, dispatch, sign for, feed back, verify) runs through it against a live
server on loopback. Every answer is parsed into the generated models, and an answer whose
status the document does not list raises (`raise_on_unexpected_status`)."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.core.database import Database, utcnow
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from tests.support.contract import OPENAPI
from tests.support.live import serve
from tests.support.photos import jpeg
from tests.support.places import on_segment

PACKAGE = "roadchief_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated from the committed document, importable as `roadchief_client`."""
    root = tmp_path_factory.mktemp("generated")
    tools = Path(sys.executable).parent  # the generator and the ruff it formats with
    run = subprocess.run(
        [tools / "openapi-python-client", "generate", "--path", OPENAPI,
         "--output-path", root / PACKAGE, "--meta", "none"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # The one part it leaves out: the photo file itself (image/* answers it cannot type).
    warnings = [line for line in run.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == ["WARNING parsing GET /api/v1/photos/{photo_id}/{variant} within photos."]
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def _models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def test_the_pothole_story_runs_through_a_generated_client(
    generated: ModuleType, live_database: Database, settings: Settings
) -> None:
    models, types = _models(), importlib.import_module(f"{PACKAGE}.types")
    auth, photos = _api("auth.token"), _api("photos.upload_photo")
    reports = _api("reports.submit_report")
    get_case = _api("cases.get_case")
    with live_database.sessions() as db:
        spot = on_segment(db, chief="demo-chief-3", skip=2)

    with serve(create_app(settings, live_database)) as base:
        anonymous = generated.Client(base_url=base, raise_on_unexpected_status=True)

        def signed_in(username: str) -> Any:
            form = models.TokenForm(
                grant_type=models.TokenFormGrantType.PASSWORD,
                username=username,
                password=DEMO_PASSWORD,
            )
            answer = auth.sync_detailed(client=anonymous, body=form)
            assert answer.status_code == 200, answer.content
            assert isinstance(answer.parsed, models.TokenPair)
            return generated.AuthenticatedClient(
                base_url=base, token=answer.parsed.access_token, raise_on_unexpected_status=True
            )

        def photo(client: Any) -> int:
            upload = models.UploadPhotoForm(
                file=types.File(payload=io.BytesIO(jpeg(seed=utcnow().microsecond)),
                                file_name="p.jpg", mime_type="image/jpeg")
            )  # fmt: skip
            answer = photos.sync_detailed(client=client, body=upload)
            assert answer.status_code == 201, answer.content
            assert isinstance(answer.parsed, models.PhotoOut)
            return int(answer.parsed.id)

        chief, dispatcher = signed_in("demo-chief-3"), signed_in("demo-dispatcher")
        staff = signed_in("demo-staff")

        # 1. The road chief reports a pothole with a photo.
        report = models.ReportIn(
            category_code="roads.surface", description="路面坑洼，雨天积水",
            lon=spot.lon, lat=spot.lat, accuracy_m=8, device_time=utcnow(),
            photos=[models.PhotoRef(photo_id=photo(chief))],
        )  # fmt: skip
        receipt = reports.sync_detailed(
            client=chief, body=report, idempotency_key=str(uuid.uuid4())
        )
        assert receipt.status_code == 201, receipt.content
        assert isinstance(receipt.parsed, models.ReportReceipt)
        number = receipt.parsed.case_number

        case = get_case.sync_detailed(number, client=dispatcher)
        assert isinstance(case.parsed, models.CaseOut)
        assert case.parsed.status == models.CaseStatus.PENDING_REGISTRATION
        assert case.headers["ETag"] == f'"{case.parsed.version}"'
        version = case.parsed.version

        def act(client: Any, step: str, body: Any) -> Any:
            """Step `step` through its own operation (`register_case`, ...) and body model."""
            nonlocal version
            answer = _api(f"cases.{step}_case").sync_detailed(
                number, client=client, body=body, if_match=f'"{version}"'
            )
            assert answer.status_code == 200, answer.content
            assert isinstance(answer.parsed, models.CaseOut)
            assert answer.headers["ETag"] == f'"{answer.parsed.version}"'
            version = answer.parsed.version
            return answer.parsed

        # 2-3. The centre registers it and dispatches it to urban management.
        act(dispatcher, "register", models.RegisterStepIn())
        dispatched = act(
            dispatcher,
            "dispatch",
            models.DispatchStepIn(units=["urban-management"], reason="城管处置"),
        )
        assert dispatched.status == models.CaseStatus.DISPATCHED
        # 4-5. The department signs for it and feeds back with a photo of the repair.
        assert (
            act(staff, "sign_for", models.SignForStepIn()).status == models.CaseStatus.IN_PROGRESS
        )
        fixed = models.FeedBackStepIn(note="已修补坑洼", photo_ids=[photo(staff)])
        fed_back = act(staff, "feed_back", fixed)
        assert fed_back.status == models.CaseStatus.AWAITING_VERIFICATION
        # 6. The road chief verifies on site; the case closes.
        here = models.VerifyPassStepIn(lon=spot.lon, lat=spot.lat, note="已修好")
        closed = act(chief, "verify_pass", here)
        assert closed.status == models.CaseStatus.CLOSED
        assert [e.kind for e in closed.history] == [
            models.CaseEventKind.REPORTED, models.CaseEventKind.REGISTERED,
            models.CaseEventKind.DISPATCHED, models.CaseEventKind.SIGNED_FOR,
            models.CaseEventKind.FED_BACK, models.CaseEventKind.VERIFIED,
        ]  # fmt: skip

        # A problem answer parses as the problem body the document names.
        stale = _api("cases.reopen_case").sync_detailed(
            number, client=dispatcher, body=models.ReopenStepIn(), if_match='"1"'
        )
        assert stale.status_code == 409
        assert isinstance(stale.parsed, models.ProblemBody)
        assert stale.parsed.code == "version_conflict"
