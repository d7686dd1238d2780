"""The working calendar (工作日历): working days, hours, holidays and make-up days."""
