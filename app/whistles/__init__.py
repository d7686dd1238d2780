"""The whistle (吹哨): a road chief summons departments, each must report in (报到)."""
