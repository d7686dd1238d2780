"""Reports (上报) from the phone: geotagged photo reports, never lost and never doubled."""
