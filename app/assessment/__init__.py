"""Assessment (考核评价): case KPIs, rankings and what assessors read."""
