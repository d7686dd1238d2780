"""Departments and units (单位) of the demo district 金河区.

The functional departments are every 牵头单位 (lead unit) and 责任单位 (responsible unit)
named in the Huiji district plan (seed 000). Their Chinese names are kept exactly as in the
plan, 惠济 included, because routing tables are written against those names. Three more come
from the Dengfeng city plan (seed 001), named as there, so that its routing table can be
activated in the demo city too. Street offices (街道办事处) are not listed here: the city
generator adds one per generated street.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

UnitKind = Literal["functional_department", "street_office", "utility", "command_centre"]


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit that cases can be routed to; `jurisdiction_code` is set for street offices only."""

    code: str
    name: str
    name_en: str
    kind: UnitKind
    jurisdiction_code: str | None = None

    def as_properties(self) -> dict[str, str | None]:
        """Return the GeoJSON feature properties of the unit, in the importer's field names."""
        return {
            "code": self.code,
            "name": self.name,
            "name_en": self.name_en,
            "kind": self.kind,
            "jurisdiction_code": self.jurisdiction_code,
        }


def _department(code: str, name: str, name_en: str) -> Unit:
    return Unit(code, name, name_en, "functional_department")


COMMAND_CENTRES: Final[tuple[Unit, ...]] = (
    Unit(
        "command-centre",
        "金河区数字化城市管理指挥中心",
        "Jinhe District Digital Urban Management Command Centre",
        "command_centre",
    ),
    Unit(
        "refinement-office",
        "区精细办",
        "District Office for Refined Urban Management",
        "command_centre",
    ),
)

FUNCTIONAL_DEPARTMENTS: Final[tuple[Unit, ...]] = (
    _department("urban-management", "区城管局", "District Urban Management Bureau"),
    _department(
        "housing-construction",
        "区住建局",
        "District Housing and Urban-Rural Development Bureau",
    ),
    _department("transport", "区交通局", "District Transport Bureau"),
    _department("forestry-landscape", "区林业和园林局", "District Forestry and Landscape Bureau"),
    _department("agriculture-rural", "区农委", "District Agriculture and Rural Affairs Committee"),
    _department("finance", "区财政局", "District Finance Bureau"),
    _department("health", "区卫健委", "District Health Commission"),
    _department(
        "market-regulation", "区市场监督管理局", "District Market Regulation Administration"
    ),
    _department("fire-rescue", "区消防救援大队", "District Fire and Rescue Brigade"),
    _department(
        "market-development-huiji",
        "市市场发展中心惠济市场分中心",
        "Municipal Market Development Centre, Huiji Sub-centre",
    ),
    _department(
        "police-changxinglu",
        "市公安局长兴路分局",
        "Municipal Public Security Bureau, Changxing Road Branch",
    ),
    _department(
        "police-dahelu",
        "市公安局大河路分局",
        "Municipal Public Security Bureau, Dahe Road Branch",
    ),
    _department("traffic-police-5", "市交警五大队", "Municipal Traffic Police, 5th Brigade"),
    _department(
        "government-services-big-data",
        "区政务服务和大数据管理局",
        "District Government Services and Big Data Administration",
    ),
    _department("education-sports", "区教体局", "District Education and Sports Bureau"),
    _department(
        "development-statistics",
        "区发改统计局",
        "District Development, Reform and Statistics Bureau",
    ),
    _department("natural-resources", "区自然资源局", "District Natural Resources Bureau"),
    _department(
        "transport-enforcement-huiji",
        "市交通局执法支队惠济大队",
        "Municipal Transport Bureau Enforcement Detachment, Huiji Brigade",
    ),
    _department("disabled-persons-federation", "区残联", "District Disabled Persons' Federation"),
    _department("environmental-protection", "区环保局", "District Environmental Protection Bureau"),
    _department(
        "planning-service-huiji",
        "市城乡规划惠济服务中心",
        "Municipal Urban-Rural Planning Service Centre, Huiji",
    ),
    _department("commerce", "区商务局", "District Commerce Bureau"),
    _department(
        "science-industry",
        "区科工局",
        "District Science, Technology and Industry Bureau",
    ),
    _department("culture-tourism", "区文化旅游局", "District Culture and Tourism Bureau"),
    _department("grand-canal-guxing", "古荥大运河文化区", "Guxing Grand Canal Cultural Zone"),
    _department(
        "planning-development-centre", "区规划发展中心", "District Planning and Development Centre"
    ),
    _department("civilisation-office", "区文明办", "District Civilisation Office"),
    _department("trade-union", "区工会", "District Federation of Trade Unions"),
    _department("youth-league", "团区委", "District Committee of the Communist Youth League"),
    _department("womens-federation", "区妇联", "District Women's Federation"),
    # Named in the Dengfeng plan only (its other units map onto the ones above).
    _department("public-security", "市公安局", "Municipal Public Security Bureau"),
    _department("water-resources", "市水利局", "Municipal Water Resources Bureau"),
    _department("forestry", "市林业局", "Municipal Forestry Bureau"),
)

UTILITIES: Final[tuple[Unit, ...]] = (
    Unit("water-company", "金河水务公司", "Jinhe Water Company", "utility"),
    Unit("power-company", "国网金河供电公司", "State Grid Jinhe Power Supply Company", "utility"),
    Unit("gas-company", "金河燃气公司", "Jinhe Gas Company", "utility"),
    Unit("heat-company", "金河热力公司", "Jinhe Heating Company", "utility"),
    Unit("telecom-china-mobile", "中国移动金河分公司", "China Mobile Jinhe Branch", "utility"),
    Unit("telecom-china-unicom", "中国联通金河分公司", "China Unicom Jinhe Branch", "utility"),
    Unit("telecom-china-telecom", "中国电信金河分公司", "China Telecom Jinhe Branch", "utility"),
)

# Owner of every lamp post (路灯): functional lighting is run by the urban management bureau.
LAMP_OWNER_CODE: Final = "urban-management"

STATIC_UNITS: Final[tuple[Unit, ...]] = COMMAND_CENTRES + FUNCTIONAL_DEPARTMENTS + UTILITIES


def street_office(street_code: str, street_name: str, pinyin: str) -> Unit:
    """Return the 街道办事处 (street office) unit governing the street `street_code`."""
    return Unit(
        code=f"street-{street_code}",
        name=f"{street_name}办事处",
        name_en=f"{pinyin} Sub-district Office",
        kind="street_office",
        jurisdiction_code=street_code,
    )
