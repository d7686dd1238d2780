"""Cases (案件): what a report becomes, and its history of events."""
