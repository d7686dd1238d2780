"""What one domain does when another's thing happens, without the first importing the
second: `cases` calls the listeners of its events and runs the extra sweeps registered
here, so notifications and whistles depend on cases and never the other way.

Imported (for its registrations) by whatever writes case events: the app (`app.main`),
the CLI (`app.cli`), the background jobs (`app.jobs`) and the benchmarks.
"""

from __future__ import annotations

from app.cases.service import on_case_event
from app.cases.sweep import also_sweep
from app.notifications.service import notify_case_event
from app.whistles.sweep import sweep_missed_report_ins

on_case_event(notify_case_event)
also_sweep(sweep_missed_report_ins)
