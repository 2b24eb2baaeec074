"""Dates as news sites write them: ISO 8601, RFC 822, and Spanish (or English) prose.

``parse_date("12 de marzo de 2020, 10:30", tz=MADRID)``, ``parse_date("hace 3 horas",
now=fetched_at)``, ``parse_date("2020-03-12T10:30:00+0100")`` all give timezone-aware datetimes.
A date without a zone is read in ``tz`` (the source's country zone, else UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from covidnews.text import fold

MONTHS = {
    "enero": 1, "ene": 1, "january": 1, "jan": 1,
    "febrero": 2, "feb": 2, "february": 2,
    "marzo": 3, "mar": 3, "march": 3,
    "abril": 4, "abr": 4, "april": 4, "apr": 4,
    "mayo": 5, "may": 5,
    "junio": 6, "jun": 6, "june": 6,
    "julio": 7, "jul": 7, "july": 7,
    "agosto": 8, "ago": 8, "august": 8, "aug": 8,
    "septiembre": 9, "setiembre": 9, "sep": 9, "sept": 9, "set": 9, "september": 9,
    "octubre": 10, "oct": 10, "october": 10,
    "noviembre": 11, "nov": 11, "november": 11,
    "diciembre": 12, "dic": 12, "december": 12, "dec": 12,
}  # fmt: skip

COUNTRY_TZ = {
    "ES": "Europe/Madrid", "MX": "America/Mexico_City", "AR": "America/Argentina/Buenos_Aires",
    "CO": "America/Bogota", "CL": "America/Santiago", "PE": "America/Lima",
    "VE": "America/Caracas", "EC": "America/Guayaquil", "BO": "America/La_Paz",
    "PY": "America/Asuncion", "UY": "America/Montevideo", "GT": "America/Guatemala",
    "SV": "America/El_Salvador", "HN": "America/Tegucigalpa", "NI": "America/Managua",
    "CR": "America/Costa_Rica", "PA": "America/Panama", "CU": "America/Havana",
    "DO": "America/Santo_Domingo", "PR": "America/Puerto_Rico", "US": "America/New_York",
    "GB": "Europe/London", "DE": "Europe/Berlin", "FR": "Europe/Paris", "CH": "Europe/Zurich",
    "SE": "Europe/Stockholm",
}  # fmt: skip

_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_TIME = (
    r"(?:\D{0,12}?(?P<h>\d{1,2})[:.h](?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[ap]\.?\s?m\.?)?)?"
)
_DAY_MONTH_YEAR = re.compile(
    rf"\b(?P<d>\d{{1,2}})(?:º|°|o\b)?\s*(?:de\s+|-|\s|/|\.)\s*(?P<m>{_MONTH_RE})\.?\s*(?:de(?:l)?\s+|-|\s|/|,\s*)\s*(?P<y>\d{{4}})\b"
    + _TIME,
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"\b(?P<m>{_MONTH_RE})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b" + _TIME,
    re.IGNORECASE,
)
_NUMERIC = re.compile(
    r"\b(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4}|\d{2})\b" + _TIME, re.IGNORECASE
)
_ISO_DAY = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b")
_RELATIVE = re.compile(
    r"\b(?:hace\s+(?P<n>\d+|un|una|unos|unas)\s+(?P<unit>segundos?|seg|minutos?|min|horas?|h|d[ií]as?|semanas?|mes(?:es)?)\b"
    r"|(?P<n2>\d+|an?|one)\s+(?P<unit2>seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\s+ago\b)",
    re.IGNORECASE,
)
_UNITS = {
    "seg": 1, "segundo": 1, "segundos": 1, "second": 1, "seconds": 1,
    "min": 60, "minuto": 60, "minutos": 60, "minute": 60, "minutes": 60, "mins": 60,
    "h": 3600, "hora": 3600, "horas": 3600, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
    "dia": 86400, "dias": 86400, "day": 86400, "days": 86400,
    "semana": 604800, "semanas": 604800, "week": 604800, "weeks": 604800,
    "mes": 2592000, "meses": 2592000, "month": 2592000, "months": 2592000,
}  # fmt: skip
_WORDS = {"ayer": -1, "anteayer": -2, "antier": -2, "hoy": 0, "yesterday": -1, "today": 0}


def zone_for(country: str | None) -> tzinfo:
    """The time zone news from ``country`` is dated in (UTC when unknown)."""
    name = COUNTRY_TZ.get((country or "").upper())
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # pragma: no cover - tzdata missing
        return UTC


def parse_iso(value: str, tz: tzinfo = UTC) -> datetime | None:
    """ISO 8601 / RFC 3339 with the usual deviations (``+0100``, ``Z``, space separator)."""
    raw = value.strip()
    if not raw or not raw[:4].isdigit():
        return None
    raw = re.sub(r"([T ])(\d):", r"\g<1>0\2:", raw)  # T7:00 → T07:00
    raw = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", raw)
    raw = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2})$", r"\1:00", raw)
    raw = re.sub(r"\s*(UTC|GMT|Z)$", "+00:00", raw, flags=re.IGNORECASE)
    raw = re.sub(r"(\.\d{6})\d+", r"\1", raw)  # more than microseconds
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        match = _ISO_DAY.match(raw)
        if not match:
            return None
        try:
            parsed = datetime(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _build(y: int, m: int, d: int, match: re.Match[str], tz: tzinfo) -> datetime | None:
    if y < 100:
        y += 2000
    hour = int(match["h"]) if match["h"] else 0
    minute = int(match["mi"]) if match["mi"] else 0
    second = int(match["s"]) if match["s"] else 0
    ampm = (match["ampm"] or "").replace(".", "").replace(" ", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    try:
        return datetime(y, m, d, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def parse_date(
    value: str | None, *, tz: tzinfo = UTC, now: datetime | None = None
) -> datetime | None:
    """Best-effort parse of one date string; None when it holds no date."""
    if not value:
        return None
    text = " ".join(value.split())
    iso = parse_iso(text, tz)
    if iso is not None:
        return iso
    if re.match(r"^[A-Za-z]{3},\s+\d{1,2}\s+[A-Za-z]{3}\s+\d{4}", text):
        try:
            parsed = parsedate_to_datetime(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
        except (TypeError, ValueError, IndexError):
            pass
    folded = fold(text)
    now = now or datetime.now(UTC)
    rel = _RELATIVE.search(folded)
    if rel:
        n_raw = (rel["n"] or rel["n2"] or "1").lower()
        n = int(n_raw) if n_raw.isdigit() else 1
        unit = (rel["unit"] or rel["unit2"] or "").lower()
        seconds = _UNITS.get(unit) or _UNITS.get(unit.rstrip("s"), 0)
        if seconds:
            return now - timedelta(seconds=n * seconds)
    for pattern in (_DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        match = pattern.search(folded)
        if match:
            built = _build(int(match["y"]), MONTHS[match["m"].lower()], int(match["d"]), match, tz)
            if built:
                return built
    match = _NUMERIC.search(folded)
    if match:  # Spanish order: day/month/year
        built = _build(int(match["y"]), int(match["m"]), int(match["d"]), match, tz)
        if built:
            return built
    for word, days in _WORDS.items():
        if re.search(rf"\b{word}\b", folded):
            local = now.astimezone(tz)
            time = re.search(r"\b(\d{1,2})[:.h](\d{2})\b", folded)
            day = (local + timedelta(days=days)).replace(second=0, microsecond=0)
            if time:
                return day.replace(hour=int(time[1]) % 24, minute=int(time[2]) % 60)
            return day
    if len(text) <= 80 and re.search(r"\d{4}", text):
        return _dateparser(text, tz, now)
    return None


def _dateparser(text: str, tz: tzinfo, now: datetime) -> datetime | None:
    """dateparser as the last resort for wordings our patterns miss (it knows many languages'
    month names and orders; ~1-80 ms a call, so only for text with a year our fast paths could
    not read). A full day, month and year are required: no guessing of missing parts."""
    import dateparser

    zone = getattr(tz, "key", None) or "UTC"
    try:
        parsed = dateparser.parse(
            text,
            languages=["es", "en", "pt"],
            settings={
                "RELATIVE_BASE": now.astimezone(tz).replace(tzinfo=None),
                "TIMEZONE": zone,
                "RETURN_AS_TIMEZONE_AWARE": True,
                "PREFER_DATES_FROM": "past",
                "REQUIRE_PARTS": ["day", "month", "year"],
            },
        )
    except Exception:  # dateparser raises assorted errors on odd input: no date, then
        return None
    if not isinstance(parsed, datetime) or not 1900 <= parsed.year <= 2200:
        return None
    return parsed


_URL_DATE = re.compile(
    r"/(?P<y>20\d{2}|19\d{2})[/-]?(?P<m>0[1-9]|1[0-2])[/-]?(?P<d>0[1-9]|[12]\d|3[01])(?:[/_.-]|\d{6}|$)"
)


def date_from_url(url: str, tz: tzinfo = UTC) -> datetime | None:
    """A date written in an article URL's path (``/2020/03/12/``, ``/2020-03-12/``, ``/20200312``)."""
    match = _URL_DATE.search(url)
    if not match:
        return None
    try:
        return datetime(int(match["y"]), int(match["m"]), int(match["d"]), tzinfo=tz)
    except ValueError:
        return None
