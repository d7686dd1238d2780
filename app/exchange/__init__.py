"""The exchange with a city's 数字城管 platform: cases out since a cursor, cases in."""
