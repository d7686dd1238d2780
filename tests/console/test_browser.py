"""The console in a real browser: Debian's chromium, driven through its chromium-driver
(scripts/test installs both), against the service on loopback. Screenshots of the pages
it passes go to var/screenshots/ (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from app.core.database import Database, utcnow
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from tests.support.live import serve, signed_in
from tests.support.places import on_segment

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
#: axe-core 4.14.1 from the npm registry (MPL-2.0, unmodified), for the accessibility check.
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
SIZES = ((1366, 768), (1920, 1080))


@pytest.fixture
def chromium(engine_name: str) -> Iterator[WebDriver]:
    if engine_name != "sqlite":
        pytest.skip("the browser story runs once, on SpatiaLite")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("chromium and chromium-driver are not installed (scripts/test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_argument("--window-size=1366,768")
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def shoot(chrome: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        chrome.set_window_size(width, height)
        chrome.save_screenshot(str(SCREENSHOTS / f"console-{name}-{width}x{height}.png"))
    chrome.set_window_size(*SIZES[0])


def accessible(chrome: WebDriver) -> None:
    """axe-core's WCAG 2 A and AA rules on the page: labels, names, contrast, landmarks,
    keyboard focus order. No serious or critical violation."""
    chrome.execute_script(AXE.read_text())
    found = chrome.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})"
        ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length,"
        " v.nodes[0].target.join(' ')])));"
    )
    serious = [v for v in found if v[1] in ("serious", "critical")]
    assert serious == [], f"{chrome.current_url}: {serious}"


def test_staff_sign_in_and_sign_for_a_task_in_chromium(
    chromium: WebDriver, live_database: Database, settings: Settings
) -> None:
    with live_database.sessions() as db:
        spot = on_segment(db, chief="demo-chief-3", skip=5)
    with serve(create_app(settings, live_database)) as base, httpx.Client(base_url=base) as api:
        report = api.post(
            "/api/v1/reports", headers=signed_in(base, "demo-chief-3"),
            json={"category_code": "civility.public_behaviour", "description": "乱堆杂物",
                  "lon": spot.lon, "lat": spot.lat, "device_time": utcnow().isoformat()},
        )  # fmt: skip
        assert report.status_code == 201, report.text
        number = report.json()["case_number"]
        centre = signed_in(base, "demo-dispatcher")
        version = api.get(f"/api/v1/cases/{number}", headers=centre).json()["version"]
        for action, body in (
            ("register", {}),
            ("dispatch", {"units": ["urban-management"], "reason": "城管处置"}),
        ):
            step = api.post(
                f"/api/v1/cases/{number}/actions/{action}",
                headers={**centre, "If-Match": f'"{version}"'}, json=body,
            )  # fmt: skip
            assert step.status_code == 200, step.text
            version = step.json()["version"]

        # Secure cookies on plain HTTP: browsers allow them on localhost only.
        console = base.replace("127.0.0.1", "localhost") + "/console"
        wait = WebDriverWait(chromium, 20)
        chromium.get(f"{console}/tasks")
        wait.until(seen.url_contains("/console/login"))
        shoot(chromium, "login")
        accessible(chromium)
        chromium.find_element(By.ID, "username").send_keys("demo-staff")
        chromium.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
        chromium.find_element(By.ID, "sign-in").click()
        wait.until(seen.presence_of_element_located((By.LINK_TEXT, number)))
        assert chromium.current_url.endswith("/console/tasks")
        shoot(chromium, "tasks")
        accessible(chromium)

        chromium.find_element(By.LINK_TEXT, number).click()
        button = wait.until(
            seen.element_to_be_clickable((By.CSS_SELECTOR, "#step-sign_for button[type=submit]"))
        )
        shoot(chromium, "case")
        accessible(chromium)
        button.click()
        wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "操作已完成"))
        assert 'id="step-feed_back"' in chromium.page_source
        shoot(chromium, "case-signed")

        case = api.get(f"/api/v1/cases/{number}", headers=centre).json()
        task = next(t for t in case["tasks"] if t["unit"]["code"] == "urban-management")
        assert task["status"] == "signed"
        assert case["history"][-1]["kind"] == "signed_for"

        chromium.get(f"{console}/map")  # Leaflet from the service itself, no internet
        wait.until(lambda d: d.find_element(By.ID, "territory-map").get_attribute("data-loaded"))
        drawn = chromium.find_element(By.ID, "territory-map").get_attribute("data-loaded")
        assert int(drawn or 0) > 0
        # The cases, clustered by Leaflet.markercluster (vendored): the one above among them.
        wait.until(
            lambda d: d.find_element(By.ID, "territory-map").get_attribute("data-cases-loaded")
        )
        clustered = chromium.find_element(By.ID, "territory-map").get_attribute("data-cases-loaded")
        assert int(clustered or 0) >= 1
        shoot(chromium, "map")
        accessible(chromium)
        chromium.find_element(By.CSS_SELECTOR, "form.who button").click()
        wait.until(seen.url_contains("/console/login"))


def test_the_new_desk_pages_draw_and_pass_the_accessibility_check_in_chromium(
    chromium: WebDriver, live_database: Database, settings: Settings
) -> None:
    """The centre's alarms and whistles, the assessors' heat and coverage maps (drawn by
    Leaflet over the territory), the admins' webhooks and routing tables."""
    with serve(create_app(settings, live_database)) as base:
        console = base.replace("127.0.0.1", "localhost") + "/console"
        wait = WebDriverWait(chromium, 20)

        def sign_in(username: str) -> None:
            chromium.delete_all_cookies()
            chromium.get(f"{console}/login")
            chromium.find_element(By.ID, "username").send_keys(username)
            chromium.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
            chromium.find_element(By.ID, "sign-in").click()
            wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "form.who")))

        def visit(path: str, name: str) -> None:
            chromium.get(f"{console}{path}")
            wait.until(seen.presence_of_element_located((By.TAG_NAME, "h1")))
            assert "无法完成" not in chromium.title, path
            shoot(chromium, name)
            accessible(chromium)

        sign_in("demo-dispatcher")
        visit("/alarms", "alarms")
        visit("/whistles", "whistles")
        sign_in("demo-assessor")
        for path, name in (("/heatmap", "heatmap"), ("/coverage", "coverage")):
            chromium.get(f"{console}{path}")
            wait.until(lambda d: d.find_element(By.ID, "overlay-map").get_attribute("data-loaded"))
            shoot(chromium, name)
            accessible(chromium)
        visit("/inspections", "inspections")
        sign_in("demo-admin")
        visit("/admin/webhooks", "webhooks")
        visit("/admin/routing", "routing")
