"""The national classification of components and events (管理部件和事件), per edition.

A deployment chooses its edition (`ROADCHIEF_NATIONAL_EDITION`). Each edition ships as a
data file (`data/<edition>.yaml`) with its identifier layout, where its text was sought
and what of it could be transcribed; class codes the shipped file cannot source come from
the deployment's own platform table (`ROADCHIEF_NATIONAL_TABLE`, the same shape), never
from guesses. A category's national class is found by the names the taxonomy gives it
(`national: {kind, major, minor}`): the table turns names into codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).resolve().parent / "data"
Kind = Literal["component", "event"]


class MinorClassDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\d{2,3}$")
    name: str
    source: str | None = None


class MajorClassDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\d{2}$")
    name: str
    source: str | None = None
    minors: list[MinorClassDoc] = Field(default_factory=list)


class LayoutDoc(BaseModel):
    """How a component identifier (部件标识码) is made: district + major + minor + serial."""

    model_config = ConfigDict(extra="forbid")
    district_digits: int = 6
    major_digits: int = 2
    minor_digits: int
    serial_digits: int

    @property
    def length(self) -> int:
        return self.district_digits + self.major_digits + self.minor_digits + self.serial_digits


class EditionDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    edition: str
    title: str
    status: str
    layout: LayoutDoc
    sources: list[str] = Field(default_factory=list)
    missing: str | None = None
    components: list[MajorClassDoc] = Field(default_factory=list)
    events: list[MajorClassDoc] = Field(default_factory=list)


class TableDoc(BaseModel):
    """A deployment's own code table for its edition (from its platform)."""

    model_config = ConfigDict(extra="forbid")
    edition: str
    source: str
    components: list[MajorClassDoc] = Field(default_factory=list)
    events: list[MajorClassDoc] = Field(default_factory=list)


class StandardsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROADCHIEF_NATIONAL_", extra="ignore", frozen=True)
    edition: str = Field(default="cjt-214-2007", description="The national edition in force.")
    table: Path | None = Field(default=None, description="The platform's code table (YAML).")


@dataclass(frozen=True, slots=True)
class NationalClass:
    """A category's place in the edition: kind, major and (where one fits) minor class."""

    kind: Kind
    major_code: str
    major_name: str
    minor_code: str | None = None
    minor_name: str | None = None

    @property
    def code(self) -> str:
        """`event:0401` (major 04, minor 01); `component:01` when only the major fits."""
        return f"{self.kind}:{self.major_code}{self.minor_code or ''}"


@dataclass(frozen=True)
class Edition:
    doc: EditionDoc
    table_source: str | None
    #: (kind, major name) → major code; (kind, major code, minor name) → minor code.
    majors: dict[tuple[str, str], str] = field(default_factory=dict)
    minors: dict[tuple[str, str, str], str] = field(default_factory=dict)
    names: dict[tuple[str, str, str | None], str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.doc.edition

    def classify(self, national: dict[str, Any] | None) -> NationalClass | None:
        """The class of a taxonomy `national` entry, or None when the table has no code."""
        if not national:
            return None
        kind, major = national.get("kind"), national.get("major")
        major_code = self.majors.get((str(kind), str(major)))
        if major_code is None:
            return None
        minor = national.get("minor")
        minor_code = self.minors.get((str(kind), major_code, str(minor))) if minor else None
        return NationalClass(
            kind=kind,  # type: ignore[arg-type]
            major_code=major_code,
            major_name=str(major),
            minor_code=minor_code,
            minor_name=str(minor) if minor_code else None,
        )

    def class_name(self, kind: str, major_code: str, minor_code: str | None) -> str | None:
        return self.names.get((kind, major_code, minor_code))


def editions() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


@lru_cache
def load_edition(key: str, table: Path | None = None) -> Edition:
    """An edition's shipped file, with the deployment's table laid over it."""
    path = DATA_DIR / f"{key}.yaml"
    if not path.exists():
        raise ValueError(f"unknown national edition {key!r}: one of {', '.join(editions())}")
    doc = EditionDoc.model_validate(_read(path))
    groups: list[tuple[str, list[MajorClassDoc]]] = [
        ("component", doc.components),
        ("event", doc.events),
    ]
    source = None
    if table is not None:
        extra = TableDoc.model_validate(_read(table))
        if extra.edition != key:
            raise ValueError(f"{table}: a table of {extra.edition}, not of {key}")
        groups += [("component", extra.components), ("event", extra.events)]
        source = extra.source
    edition = Edition(doc=doc, table_source=source)
    for kind, majors in groups:
        for major in majors:
            if len(major.code) != doc.layout.major_digits:
                raise ValueError(
                    f"{key}: major class {major.code} is not {doc.layout.major_digits} digits"
                )
            edition.majors[(kind, major.name)] = major.code
            edition.names[(kind, major.code, None)] = major.name
            for minor in major.minors:
                if len(minor.code) != doc.layout.minor_digits:
                    raise ValueError(
                        f"{key}: minor class {major.code}{minor.code} is not "
                        f"{doc.layout.minor_digits} digits"
                    )
                edition.minors[(kind, major.code, minor.name)] = minor.code
                edition.names[(kind, major.code, minor.code)] = minor.name
    return edition


@lru_cache
def standards_settings() -> StandardsSettings:
    return StandardsSettings()


def current_edition() -> Edition:
    """The edition the deployment chose, with its table."""
    options = standards_settings()
    return load_edition(options.edition, options.table)


_CODE = re.compile(r"^(component|event):(\d+)$")


def parse_code(text: str) -> tuple[Kind, str] | None:
    match = _CODE.match(text)
    return (match.group(1), match.group(2)) if match else None  # type: ignore[return-value]
