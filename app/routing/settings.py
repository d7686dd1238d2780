"""Routing's settings (`ROADCHIEF_ROUTING_ASSET_MAX_DISTANCE_M`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class RoutingSettings(BaseSettings):
    """How far a named asset may lie from the reported point."""

    model_config = ENV_CONFIG

    routing_asset_max_distance_m: float = Field(
        default=200.0,
        gt=0,
        le=5000,
        description="An asset named in a report must lie this close to the reported point.",
    )
