"""The web console's settings (`ROADCHIEF_CONSOLE_*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class ConsoleSettings(BaseSettings):
    """The console's cookies and base map."""

    model_config = ENV_CONFIG

    # --- the web console (/console) ---
    console_secure_cookies: bool = Field(
        default=True,
        description="The console's cookies are Secure (HTTPS only; browsers also accept "
        "them on http://localhost). Turn off only behind a plain-HTTP test setup.",
    )
    console_tile_url: str | None = Field(
        default=None,
        description="Base map tiles for the console's map ('https://.../{z}/{x}/{y}.png'); "
        "none: the territory itself is the base map (works with no internet).",
    )
    console_tile_coordinates: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="The tiles' datum: gcj02 for Amap and Tencent tiles (the console shifts "
        "what it draws onto them), wgs84 for Tianditu (CGCS2000) and OpenStreetMap.",
    )
    console_tile_attribution: str = Field(default="", description="Shown under the map.")
