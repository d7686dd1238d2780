"""One demo user per role in the demo city, all with the same published password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, set_chief_segments
from app.territory.models import Jurisdiction, RoadGrade, RoadSegment

if TYPE_CHECKING:
    from app.settings import Settings

#: Published in the README and printed by scripts/start: demo data only.
DEMO_PASSWORD = "Jinhe@2026"

DISTRICT, STREET, COMMUNITY = "410199", "410199001", "410199001001"


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    roles: tuple[Role, ...]
    scope: tuple[str, ...]
    chief_level: int | None = None
    unit_code: str | None = None
    what: str = ""


DEMO_USERS = (
    DemoUser("demo-admin", "系统管理员", (Role.ADMIN,), (), what="manages users, territory, keys"),
    DemoUser(
        "demo-dispatcher", "指挥中心派遣员", (Role.DISPATCHER,), (DISTRICT,), what="command centre"
    ),
    DemoUser("demo-supervisor", "区级监督员", (Role.SUPERVISOR,), (DISTRICT,), what="supervisor"),
    DemoUser("demo-assessor", "第三方考核员", (Role.ASSESSOR,), (DISTRICT,), what="assessor"),
    # Seed 003 (管城区): 各乡、办行政正职担任一级路长，每日巡查辖区各路段情况. District
    # leaders supervise (区级督导); they are not road chiefs with a patrol duty.
    DemoUser(
        "demo-chief-1",
        "一级路长（文博路街道办事处主任）",
        (Role.ROAD_CHIEF,),
        (STREET,),
        chief_level=1,
        what="level-1 chief: head of 文博路街道, every road of it, a round every working day",
    ),
    DemoUser(
        "demo-chief-2",
        "二级路长（文博路街道副主任）",
        (Role.ROAD_CHIEF,),
        (STREET,),
        chief_level=2,
        what="level-2 chief: every road of 文博路街道",
    ),
    DemoUser(
        "demo-chief-3",
        "三级路长（文博社区）",
        (Role.ROAD_CHIEF,),
        (COMMUNITY,),
        chief_level=3,
        what="level-3 chief: branch roads and lanes in 文博社区",
    ),
    DemoUser(
        "demo-patroller", "巡查员", (Role.PATROLLER,), (STREET,), what="patroller, 文博路街道"
    ),
    DemoUser(
        "demo-staff",
        "区城管局工作人员",
        (Role.DEPARTMENT_STAFF,),
        (DISTRICT,),
        unit_code="urban-management",
        what="department staff, 区城管局",
    ),
)


def _segments_for(session: Session, level: int) -> list[str]:
    query = select(RoadSegment.code).join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
    if level in (1, 2):
        query = query.where(Jurisdiction.code == STREET)
    else:
        community = (
            select(Jurisdiction.geom).where(Jurisdiction.code == COMMUNITY).scalar_subquery()
        )
        query = query.where(
            Jurisdiction.code == STREET,
            RoadSegment.grade.in_([RoadGrade.BRANCH, RoadGrade.BACK_LANE]),
            func.ST_Intersects(RoadSegment.geom, community),
        )
    return list(session.scalars(query.order_by(RoadSegment.code)))


def is_demo_city(session: Session) -> bool:
    """Whether the demo district is loaded (demo users are never made in a real city)."""
    return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == DISTRICT)) is not None


def create_demo_users(session: Session, settings: Settings) -> list[DemoUser]:
    """Create the demo users that do not exist yet (needs the demo territory)."""
    existing = set(session.scalars(select(User.username)))
    created = []
    for demo in DEMO_USERS:
        if demo.username in existing:
            continue
        user = create_user(
            session,
            settings,
            None,
            UserCreate(
                username=demo.username,
                display_name=demo.display_name,
                password=DEMO_PASSWORD,
                roles=list(demo.roles),
                chief_level=demo.chief_level,
                unit_code=demo.unit_code,
                jurisdiction_codes=list(demo.scope),
            ),
        )
        if demo.chief_level is not None:
            set_chief_segments(session, None, user.id, _segments_for(session, demo.chief_level))
        created.append(demo)
    return created


def demo_logins_text(base_url: str | None = None) -> str:
    lines = [f"demo logins (password for all: {DEMO_PASSWORD}):"]
    for demo in DEMO_USERS:
        lines.append(f"  {demo.username:<16} {demo.what}")
    if base_url:
        lines.append(f"  sign in: 'Authorize' in {base_url}/docs, or")
        lines.append(
            f"    curl -d grant_type=password -d username=demo-chief-2 -d password={DEMO_PASSWORD}"
            f" {base_url}/api/v1/auth/token"
        )
    return "\n".join(lines)
