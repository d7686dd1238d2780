"""Cross-cutting pieces: settings, database, errors, logging, geometry helpers, pagination."""
