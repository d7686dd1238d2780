"""The restore drill (恢复演练): a running demo city with cases is backed up with
`roadchief backup create`, restored with `roadchief backup restore` into a new database and
a new photo store, checked row by row and file by file against the original, and the story
goes on there: the case waiting for verification is verified and closed, new reports come in.
On both engines, with the photos in a directory and in a bucket."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text
from typer.testing import CliRunner

from app.accounts.service import principal_for_user, user_by_username
from app.accounts.tokens import issue_access_token
from app.cases.models import Case
from app.cli import cli
from app.core.database import Database, utcnow
from app.main import create_app
from app.media.models import Photo
from app.media.service import media_storage
from app.media.storage import key_sha256
from app.settings import Settings, get_settings
from tests.support.cases import Loop
from tests.support.databases import DatabaseFactory, new_demo_database
from tests.support.photos import jpeg
from tests.support.places import Spot, on_segment
from tests.support.reports import multipart, report_body, upload
from tests.support.s3 import bucket_keys, in_s3, s3_client, s3_endpoint  # noqa: F401 - fixture

STORES = ["local", "s3"]


class City:
    """One deployment: its settings, database, app and signed-in users."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings, self.database = settings, database
        self.client = TestClient(create_app(settings, database), raise_server_exceptions=False)

    def headers(self, username: str) -> dict[str, str]:
        with self.database.sessions() as session:
            principal = principal_for_user(user_by_username(session, username))
        return {"Authorization": f"Bearer {issue_access_token(principal, utcnow(), self.settings)}"}

    def phone(self, username: str) -> TestClient:
        self.client.headers.update(self.headers(username))
        return self.client

    def spot(self) -> Spot:
        with self.database.sessions() as session:
            return on_segment(session, chief="demo-chief-3")

    def environment(self) -> dict[str, str]:
        """What `roadchief` run by an operator on this deployment finds in its environment."""
        s = self.settings
        env = {
            "DATABASE_URL": s.database_url,
            "ROADCHIEF_MEDIA_DIR": str(s.media_dir),
            "ROADCHIEF_PHOTO_STORE": s.photo_store,
            "ROADCHIEF_LOG_FORMAT": "console",
        }
        if s.photo_store == "s3":
            env |= {
                "ROADCHIEF_S3_ENDPOINT_URL": s.s3_endpoint_url or "",
                "ROADCHIEF_S3_BUCKET": s.s3_bucket or "",
                "ROADCHIEF_S3_ADDRESSING_STYLE": "path",
            }
        return env

    def roadchief(self, *args: str) -> Any:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(cli, list(args), env=self.environment())
        finally:
            get_settings.cache_clear()

    def rows(self) -> dict[str, int]:
        """Every table's rows, counted here without the backup code (the naive second count)."""
        with self.database.engine.connect() as conn:
            names = inspect(conn).get_table_names()
            return {
                n: int(conn.scalar(text(f'SELECT count(*) FROM "{n}"')) or 0)
                for n in names
                if n == "alembic_version" or n in Photo.metadata.tables
            }

    def files(self) -> dict[str, str]:
        """SHA-256 of the bytes under every key the photo rows refer to, read from the store."""
        storage = media_storage(self.settings)
        with self.database.sessions() as session:
            keys = {
                k
                for row in session.execute(
                    select(Photo.original_key, Photo.display_key, Photo.thumbnail_key)
                )
                for k in row
            }
        out = {}
        for key in sorted(keys):
            with storage.open(key) as stream:
                out[key] = hashlib.sha256(stream.read()).hexdigest()
        return out


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_city(
    factory: DatabaseFactory, store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str, bool], City]]:
    """`make_city(name, demo)`: a deployment with its own database (the demo city loaded
    and committed, or new and empty) and its own photo store of the test's kind."""
    cities: list[City] = []

    def make(name: str, demo: bool) -> City:
        if demo:
            database = new_demo_database(factory)
            url = database.engine.url.render_as_string(hide_password=False)
        else:
            url = factory.new_url()
        settings = factory.settings(url).model_copy(update={"media_dir": tmp_path / name})
        if store == "s3":
            endpoint = request.getfixturevalue("s3_endpoint")
            bucket = f"{name}-{uuid.uuid4().hex[:12]}"
            s3_client(endpoint).create_bucket(Bucket=bucket)
            settings = in_s3(settings, endpoint, bucket)
        city = City(settings, database if demo else factory.database(url))
        cities.append(city)
        return city

    yield make
    for city in cities:
        city.client.close()


def test_a_backed_up_city_restores_whole_and_its_story_goes_on(
    make_city: Callable[[str, bool], City], store: str, engine_name: str, tmp_path: Path
) -> None:
    # The running city: two reports, one case waiting for verification, one just registered.
    city = make_city("origin", True)
    spot = city.spot()
    # Distinct bytes: the seed's high byte moves a pixel's green well past JPEG's rounding.
    pictures = [jpeg(seed=256 * g) for g in (40, 120, 200)]
    chief = city.phone("demo-chief-3")
    waiting = multipart(chief, report_body(spot), [pictures[0]]).json()["case_number"]
    fresh = multipart(
        chief,
        report_body(spot, category_code="clean.street_cleaning", description="路面垃圾未清扫"),
        [pictures[1]],
    )
    assert fresh.status_code == 201, fresh.text
    loop = Loop(city.client, city.headers, waiting)
    loop.ok("demo-dispatcher", "register")
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管处置")
    loop.ok("demo-staff", "sign_for")
    fix = upload(city.client, pictures[2], headers=city.headers("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="已修补坑洼", photo_ids=[fix])
    assert loop.read("demo-chief-3")["status"] == "awaiting_verification"
    before_rows, before_files = city.rows(), city.files()
    assert before_rows["cases"] == 2
    assert before_rows["photos"] == 3

    # Backed up while it runs.
    backup = tmp_path / "backup"
    made = city.roadchief("backup", "create", str(backup))
    assert made.exit_code == 0, made.output
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"] == ("sqlite" if engine_name == "sqlite" else "postgresql")
    assert manifest["tables"] == before_rows
    assert {k: f["sha256"] for k, f in manifest["photos"]["files"].items()} == before_files
    assert manifest["photos"]["store"] == store
    dump = backup / manifest["database"]["file"]
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == manifest["database"]["sha256"]
    assert city.roadchief("backup", "create", str(backup)).exit_code == 1  # never overwritten

    # Restored into a new database and a new store: every row and every file arrives.
    twin = make_city("restored", False)
    restored = twin.roadchief("backup", "restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert twin.rows() == before_rows
    assert twin.files() == before_files
    assert all(key_sha256(k) == v for k, v in twin.files().items())
    if store == "s3":
        assert bucket_keys(
            twin.settings.s3_endpoint_url or "", twin.settings.s3_bucket or ""
        ) == set(before_files)
    again = twin.roadchief("backup", "restore", str(backup))
    assert again.exit_code == 1  # only into a new database
    assert "not empty" in again.output
    assert twin.rows() == before_rows

    # The story goes on there: the fix is verified and the case closed, with its photos.
    moved_on = Loop(twin.client, twin.headers, waiting)
    closed = moved_on.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat, note="已修好")
    assert closed["status"] == "closed"
    report = twin.phone("demo-chief-3").get(f"/api/v1/reports/{fresh.json()['report_id']}").json()
    original = twin.client.get(report["photos"][0]["photo"]["original_url"], follow_redirects=False)
    if store == "s3":
        assert original.status_code == 307
        original = httpx.get(original.headers["location"])
    assert original.content == pictures[1]
    # New reports get new numbers after the restored ones (the sequences came along).
    later = multipart(
        twin.phone("demo-chief-3"),
        report_body(spot, category_code="roads.waterlogging", description="路面积水"),
        [jpeg(seed=256 * 250)],
    )
    assert later.status_code == 201, later.text
    with twin.database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == before_rows["cases"] + 1
    # The original city is untouched by all this.
    assert city.rows() == before_rows
