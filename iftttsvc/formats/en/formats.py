"""One date and time format on every page, the admin included, always with its time zone.

"28 Nov 2026, 01:38 UTC" reads the same to a person in any country, unlike 11/28 or "1:38 a.m.".
"""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
