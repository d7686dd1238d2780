"""Where photos live and what a photo may be (`ROADCHIEF_MEDIA_DIR`, `ROADCHIEF_PHOTO_*`,
`ROADCHIEF_S3_*`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class MediaSettings(BaseSettings):
    """The photo store and the limits of one photo."""

    model_config = ENV_CONFIG

    media_dir: Path = Field(
        default=Path("var/media"),
        description="Where photos are stored (local store), and uploads staged (either store).",
    )
    photo_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where photo files live: media_dir, or an S3-compatible bucket (s3_*; "
        "credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The S3 API the server talks to (MinIO, OSS, COS...); unset: AWS S3.",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The S3 API as phones reach it, for presigned URLs (unset: s3_endpoint_url).",
    )
    s3_bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", description="The bucket."
    )
    s3_region: str | None = Field(default=None, description="The bucket's region, if any.")
    s3_prefix: str = Field(
        default="",
        pattern=r"^$|^[A-Za-z0-9._\-/]*/$",
        description="Key prefix in the bucket ('roadchief/'), to share one bucket.",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="path (MinIO, most on-premise stores) or virtual (Aliyun OSS requires it).",
    )
    photo_delivery: Literal["redirect", "proxy"] = Field(
        default="redirect",
        description="How photos in a bucket reach clients: a redirect to a short-lived "
        "presigned URL, or streamed through the API server.",
    )
    photo_url_seconds: int = Field(
        default=300, ge=10, le=7 * 24 * 3600, description="How long a presigned URL is valid."
    )
    photo_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    photo_max_pixels: int = Field(
        default=50_000_000,
        ge=10_000,
        le=200_000_000,
        description="Decompression-bomb limit: most pixels one photo may decode to.",
    )
    photo_max_jpeg_pixels: int = Field(
        default=250_000_000,
        ge=10_000,
        le=1_000_000_000,
        description="Largest sequential JPEG (a phone camera's, up to 200 megapixels) taken: "
        "it decodes reduced, within photo_max_pixels.",
    )
    photo_processing_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        ge=1,
        le=64,
        description="Photos decoded at once per process (default: the CPU count).",
    )
    photo_display_px: int = Field(default=1600, ge=320, le=4096)
    photo_thumbnail_px: int = Field(default=320, ge=64, le=1024)
    photo_orphan_hours: float = Field(
        default=24.0, gt=0, description="Uploaded photos no report uses are removed after this."
    )

    @model_validator(mode="after")
    def _store_complete(self) -> MediaSettings:
        if self.photo_store == "s3" and not self.s3_bucket:
            raise ValueError("ROADCHIEF_PHOTO_STORE=s3 needs ROADCHIEF_S3_BUCKET")
        return self
