"""Territory (辖区): jurisdictions, grid cells, road segments, units, assets, workstations."""
