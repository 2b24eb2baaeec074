"""Counts for ``stats``: tantivy aggregations into (period, group, count) cells, corrected
for syndicated copies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from covidnews.search.keyword import (
    NO_DATE,
    decode,
)
from covidnews.search.query import TERMS_SIZE, GroupBy, Interval
from covidnews.search.ranking import View
from covidnews.taxonomy import topic_ids

if TYPE_CHECKING:
    pass

# Count cells -------------------------------------------------------------------------------


def _no_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z, z


def _aggregate_cells(
    view: View, query: Any, field_name: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, key, count) cells of the matching documents, aggregated by tantivy."""
    agg: dict[str, Any] = {"histogram": {"field": "date", "interval": 86_400, "min_doc_count": 1}}
    if field_name:
        agg["aggs"] = {"k": {"terms": {"field": field_name, "size": TERMS_SIZE}}}
    out = view.aggregate(query, {"d": agg})
    days, keys, counts = [], [], []
    for b in out.get("d", {}).get("buckets", []):
        day = int(b["key"] // 86_400)
        if field_name:
            for kb in b["k"]["buckets"]:
                days.append(day)
                keys.append(int(kb["key"]))
                counts.append(int(kb["doc_count"]))
        else:
            days.append(day)
            keys.append(0)
            counts.append(int(b["doc_count"]))
    return (
        np.asarray(days, dtype=np.int64),
        np.asarray(keys, dtype=np.int64),
        np.asarray(counts, dtype=np.int64),
    )


def _cells_of(
    view: View, addrs: list[Any], by: GroupBy | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, key, 1) cells of these documents (undated ones left out)."""
    addrs = [a for a in addrs if a is not None]
    if not addrs:
        return _no_cells()
    dates = view.column("date", addrs)
    dated = dates != NO_DATE
    days = dates // 86_400
    if by == "topic":
        masks = view.column("topic_mask", addrs, np.uint64)
        d_parts, k_parts = [], []
        for bit in range(len(topic_ids())):
            has = (((masks >> np.uint64(bit)) & np.uint64(1)) == 1) & dated
            d_parts.append(days[has])
            k_parts.append(np.full(int(has.sum()), bit, dtype=np.int64))
        day_arr, key_arr = np.concatenate(d_parts), np.concatenate(k_parts)
    elif by is not None:
        key_arr = view.column(by, addrs)[dated]
        day_arr = days[dated]
    else:
        day_arr = days[dated]
        key_arr = np.zeros(len(day_arr), dtype=np.int64)
    return day_arr, key_arr, np.ones(len(day_arr), dtype=np.int64)


def _periods(
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]], interval: Interval, by: GroupBy | None
) -> list[dict[str, Any]]:
    days = np.concatenate([c[0] for c in cells]) if cells else np.zeros(0, np.int64)
    keys = np.concatenate([c[1] for c in cells]) if cells else np.zeros(0, np.int64)
    counts = np.concatenate([c[2] for c in cells]) if cells else np.zeros(0, np.int64)
    if not len(days):
        return []
    first_day = int(days.min())
    n_days = int(days.max()) - first_day + 1
    uniq_keys, key_index = np.unique(keys, return_inverse=True)
    width = len(uniq_keys)
    per_day = np.bincount(
        (days - first_day) * width + key_index, weights=counts, minlength=n_days * width
    ).reshape(n_days, width)
    calendar = np.arange(first_day, first_day + n_days).astype("datetime64[D]")
    if interval == "week":
        offset = ((np.arange(first_day, first_day + n_days) + 3) % 7).astype("timedelta64[D]")
        period_of_day = calendar - offset
    elif interval == "month":
        period_of_day = calendar.astype("datetime64[M]").astype("datetime64[D]")
    elif interval == "year":
        period_of_day = calendar.astype("datetime64[Y]").astype("datetime64[D]")
    else:
        period_of_day = calendar
    periods, period_index = np.unique(period_of_day, return_inverse=True)
    table = np.zeros((len(periods), width), dtype=np.int64)
    np.add.at(table, period_index, per_day.astype(np.int64))
    names = topic_ids()
    out = []
    for p_i, k_i in zip(*np.nonzero(table), strict=True):
        row: dict[str, Any] = {"period": str(periods[p_i]), "count": int(table[p_i, k_i])}
        if by is not None:
            raw = int(uniq_keys[k_i])
            if by == "topic":
                row["key"] = names[raw]
            elif by == "source":
                row["key"] = None if raw < 0 else raw
            else:
                row["key"] = decode(raw)
        out.append(row)
    return out
