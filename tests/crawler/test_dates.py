from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crawler.dates import date_from_url, parse_date, parse_iso, zone_for

MADRID = ZoneInfo("Europe/Madrid")
NOW = datetime(2020, 3, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 de marzo de 2020", datetime(2020, 3, 12, tzinfo=MADRID)),
        ("Jueves, 12 de marzo de 2020, 10:30", datetime(2020, 3, 12, 10, 30, tzinfo=MADRID)),
        ("12 de marzo de 2020 a las 18:05 h", datetime(2020, 3, 12, 18, 5, tzinfo=MADRID)),
        ("Publicado el 1º de abril del 2021", datetime(2021, 4, 1, tzinfo=MADRID)),
        ("12 mar. 2020 - 09:15", datetime(2020, 3, 12, 9, 15, tzinfo=MADRID)),
        ("jueves, 09 enero 2014 10:21", datetime(2014, 1, 9, 10, 21, tzinfo=MADRID)),
        ("12 de setiembre de 2020", datetime(2020, 9, 12, tzinfo=MADRID)),
        ("08/01/2014", datetime(2014, 1, 8, tzinfo=MADRID)),
        ("Actualizado 13.03.2020 - 21:40h", datetime(2020, 3, 13, 21, 40, tzinfo=MADRID)),
        ("March 12, 2020 4:05 pm", datetime(2020, 3, 12, 16, 5, tzinfo=MADRID)),
        (
            "2020-03-12T10:30:00+0100",
            datetime(2020, 3, 12, 10, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("2020-12-20T7:00:00+01", datetime(2020, 12, 20, 7, tzinfo=timezone(timedelta(hours=1)))),
        ("2020-03-12T09:30:00Z", datetime(2020, 3, 12, 9, 30, tzinfo=UTC)),
        ("2020-03-12", datetime(2020, 3, 12, tzinfo=MADRID)),
        ("Thu, 12 Mar 2020 10:00:00 GMT", datetime(2020, 3, 12, 10, tzinfo=UTC)),
    ],
)
def test_absolute_dates(text: str, expected: datetime) -> None:
    got = parse_date(text, tz=MADRID, now=NOW)
    assert got == expected
    assert got is not None and got.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("hace 3 horas", timedelta(hours=3)),
        ("Publicado hace 25 minutos", timedelta(minutes=25)),
        ("hace un día", timedelta(days=1)),
        ("hace 2 semanas", timedelta(weeks=2)),
        ("hace 1 h", timedelta(hours=1)),
        ("3 hours ago", timedelta(hours=3)),
    ],
)
def test_relative_dates_count_back_from_fetch_time(text: str, delta: timedelta) -> None:
    assert parse_date(text, tz=MADRID, now=NOW) == NOW - delta


def test_yesterday_and_today_use_the_local_day() -> None:
    assert parse_date("ayer 22:15", tz=MADRID, now=NOW) == datetime(
        2020, 3, 19, 22, 15, tzinfo=MADRID
    )
    got = parse_date("hoy", tz=MADRID, now=NOW)
    assert got is not None and got.date() == datetime(2020, 3, 20).date()


@pytest.mark.parametrize(
    "text", ["", "sin fecha", "31 de febrero de 2020", "99/99/2020", "Última hora"]
)
def test_no_date(text: str) -> None:
    assert parse_date(text, tz=MADRID, now=NOW) is None


def test_iso_rejects_prose() -> None:
    assert parse_iso("marzo 2020") is None


def test_date_from_url() -> None:
    assert date_from_url("https://elpais.com/sociedad/2020-03-12/x.html") == datetime(
        2020, 3, 12, tzinfo=UTC
    )
    assert date_from_url("https://x.es/2020/03/12/y.html") == datetime(2020, 3, 12, tzinfo=UTC)
    assert date_from_url("https://x.es/politica/20250113/10277301/juez.html") == datetime(
        2025, 1, 13, tzinfo=UTC
    )
    assert date_from_url("https://x.es/noticia/123456/") is None


def test_zone_for_country() -> None:
    assert zone_for("MX") == ZoneInfo("America/Mexico_City")
    assert zone_for(None) is UTC
    assert zone_for("ZZ") is UTC


def test_dateparser_reads_what_our_patterns_do_not_and_never_guesses() -> None:
    now = datetime(2021, 3, 15, 12, tzinfo=UTC)
    ar = ZoneInfo("America/Argentina/Buenos_Aires")
    assert parse_date("4th of November 2020", tz=ar, now=now) == datetime(2020, 11, 4, tzinfo=ar)
    assert parse_date("Nov. 4th 2020 10:35 pm", tz=ar, now=now) == datetime(
        2020, 11, 4, 22, 35, tzinfo=ar
    )
    # A year alone, or a month and a year, is not a day: nothing is invented.
    assert parse_date("Presupuesto 2020", tz=ar, now=now) is None
    assert parse_date("noviembre de 2020", tz=ar, now=now) is None
