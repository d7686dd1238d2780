"""Open311 GeoReport v2 (with mySociety's updates extension) under `/open311/v2/`."""
