"""Whoever must act next hears of it in their inbox; the actor never hears of their own step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.cases import Loop
from tests.support.reports import upload


def inbox(loop: Loop, who: str, **params: Any) -> dict[str, Any]:
    response = loop.client.get("/api/v1/inbox", params=params, headers=loop.as_user(who))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def about(page: dict[str, Any], number: str) -> list[dict[str, Any]]:
    return [m for m in page["items"] if m["case_number"] == number]


def test_each_step_tells_the_next_actor(dispatched: Loop) -> None:
    loop = dispatched
    # The report told the centre; the dispatch told both units' staff, not the dispatcher.
    assert [m["kind"] for m in about(inbox(loop, "demo-dispatcher"), loop.number)] == ["reported"]
    staff_page = inbox(loop, "demo-staff", unread=True)
    message = about(staff_page, loop.number)[0]
    assert (message["kind"], message["read_at"]) == ("dispatched", None)
    assert "请签收" in message["title"]
    assert staff_page["unread_count"] >= 1
    assert about(inbox(loop, loop.transport), loop.number)[0]["kind"] == "dispatched"  # type: ignore[attr-defined]
    assert about(inbox(loop, "demo-chief-3"), loop.number) == []  # the reporter acted first

    loop.ok("demo-staff", "return", note="不归城管")
    assert [m["kind"] for m in about(inbox(loop, "demo-dispatcher"), loop.number)] == [
        "return_requested", "reported",
    ]  # fmt: skip
    assert [m["kind"] for m in about(inbox(loop, "demo-staff"), loop.number)] == ["dispatched"]

    loop.ok("demo-admin", "cancel", note="误报")
    assert about(inbox(loop, loop.transport), loop.number)[0]["kind"] == "cancelled"  # type: ignore[attr-defined]


def test_messages_are_marked_read_by_their_owner_only(dispatched: Loop) -> None:
    loop = dispatched
    message = about(inbox(loop, "demo-staff"), loop.number)[0]
    other = loop.client.post(
        f"/api/v1/inbox/{message['id']}/read", headers=loop.as_user("demo-dispatcher")
    )
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    mine = loop.client.post(
        f"/api/v1/inbox/{message['id']}/read", headers=loop.as_user("demo-staff")
    )
    assert mine.status_code == 204
    assert about(inbox(loop, "demo-staff", unread=True), loop.number) == []
    assert about(inbox(loop, "demo-staff", unread=False), loop.number)[0]["read_at"] is not None

    marked = loop.client.post("/api/v1/inbox/read-all", headers=loop.as_user("demo-dispatcher"))
    assert marked.json()["marked"] >= 1
    assert inbox(loop, "demo-dispatcher")["unread_count"] == 0


def test_each_message_says_what_its_reader_must_now_do(
    dispatched: Loop, good_jpeg: Callable[..., bytes]
) -> None:
    """The last release moves the case to verification: the released unit learns it need
    not act, the reporter that the case awaits their check, not "a task was released"."""
    loop = dispatched
    loop.ok("demo-staff", "sign_for")
    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="已修补", photo_ids=[fix])
    case = loop.ok("demo-dispatcher", "release", unit_code="transport", note="无须交通协办")
    assert case["status"] == "awaiting_verification"
    [to_transport] = about(inbox(loop, loop.transport), loop.number)[:1]  # type: ignore[attr-defined]
    assert (to_transport["kind"], to_transport["title"]) == (
        "released",
        f"案件 {loop.number} 的协办任务已释放，本单位无须再办",
    )
    [to_reporter] = about(inbox(loop, "demo-chief-3"), loop.number)
    assert (to_reporter["kind"], to_reporter["title"]) == (
        "released",
        f"案件 {loop.number} 已处置完毕，请到现场核查",
    )
