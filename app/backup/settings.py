"""`roadchief backup`'s settings (`ROADCHIEF_PG_BIN_DIR`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class BackupSettings(BaseSettings):
    """Where the PostgreSQL tools a backup runs are."""

    model_config = ENV_CONFIG

    pg_bin_dir: Path | None = Field(
        default=None,
        description="`roadchief backup`: where pg_dump and pg_restore of the server's major "
        "version are (unset: /usr/lib/postgresql/<major>/bin, then the PATH).",
    )
