"""The app's settings: the core's and every domain's, composed into the one object the app
builds at start (`get_settings`), above the domains that declare them.

Each domain reads its own variables (`app/<domain>/settings.py`); README.md
("Configuration") says which module holds each. A bad value stops the process at start
with a message naming the variable. Domain code names `Settings` as a type only (under
`TYPE_CHECKING`): the running app hands it this object, through `request.app.state` and
the command line's session.
"""

from __future__ import annotations

from functools import lru_cache

from app.accounts.settings import AccountSettings
from app.assessment.settings import AssessmentSettings
from app.backup.settings import BackupSettings
from app.calendar.settings import CalendarSettings
from app.cases.settings import CaseSettings
from app.console.settings import ConsoleSettings
from app.core.config import ENV_CONFIG, CoreSettings, load_settings, register_loader
from app.core.moments import speak_zone
from app.media.settings import MediaSettings
from app.notifications.settings import NotificationSettings
from app.patrols.settings import PatrolSettings
from app.reports.settings import ReportSettings
from app.routing.settings import RoutingSettings
from app.shops.settings import ShopSettings
from app.territory.settings import TerritorySettings
from app.whistles.settings import WhistleSettings


class Settings(
    CoreSettings,
    AccountSettings,
    MediaSettings,
    BackupSettings,
    TerritorySettings,
    RoutingSettings,
    CalendarSettings,
    ReportSettings,
    CaseSettings,
    WhistleSettings,
    PatrolSettings,
    ShopSettings,
    AssessmentSettings,
    NotificationSettings,
    ConsoleSettings,
):
    """Runtime configuration (environment variables, prefix ``ROADCHIEF_``): every
    domain's settings in one frozen object, validated together at start."""

    model_config = ENV_CONFIG


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (their zone is the one answers speak, `moments`); raises
    SettingsError naming each bad variable."""
    settings = load_settings(Settings)
    speak_zone(settings.zone)
    return settings


register_loader(get_settings)
