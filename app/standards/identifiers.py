"""Component identifiers (部件标识码): district code + major class + minor class + serial."""

from __future__ import annotations

from app.standards.codes import Edition, current_edition


def component_id_issues(
    value: str, district_code: str | None, edition: Edition
) -> list[tuple[str, str]]:
    """What is wrong with an identifier for an asset lying in `district_code`, as (code,
    Chinese message) pairs: its length in this edition, its district, and (when the
    edition's table has component classes) its class."""
    layout = edition.doc.layout
    if not value.isdigit() or len(value) != layout.length:
        return [("bad_national_id", f"部件标识码须为 {layout.length} 位数字（{edition.key}）")]
    issues = []
    district = value[: layout.district_digits]
    if district != district_code:
        issues.append(
            (
                "national_id_district_mismatch",
                f"部件标识码中的行政区划代码 {district} 与部件所在区 "
                f"{district_code or '（无）'} 不符",
            )
        )
    major_end = layout.district_digits + layout.major_digits
    major, minor = (
        value[layout.district_digits : major_end],
        value[major_end : major_end + layout.minor_digits],
    )
    has_classes = any(kind == "component" for kind, _ in edition.majors)
    if has_classes and edition.class_name("component", major, minor) is None:
        issues.append(
            (
                "unknown_national_class",
                f"部件标识码中的类别 {major}{minor} 不在 {edition.key} 部件分类表中",
            )
        )
    return issues


def national_id_issues(value: str, district_code: str | None) -> list[tuple[str, str]]:
    """`component_id_issues` in the deployment's edition: the check the territory importer
    is handed (`territory.importer.NationalIdCheck`)."""
    return component_id_issues(value, district_code, current_edition())
