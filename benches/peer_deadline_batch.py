#!/usr/bin/env python3
"""The Python peer of `cpor-worker deadline --batch` (run by benches/deadline_batch.rs).

Reads the same JSON lines on stdin and writes the same answers: json for the lines, zoneinfo
for local dates and local midnights, numpy busday_offset(d0, n, roll='backward') for business
days, vectorised per calendar. The holidays come from a JSON file the bench writes from the
worker's own calendars ({"SE": {"time_zone": ..., "holidays": ["2026-01-01", ...]}, ...}), so
both sides count the same days. Lines it cannot answer get {"error": ..., "line": N}.
"""

import json
import sys
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

UTC = timezone.utc


@lru_cache(maxsize=None)
def zone(name):
    return ZoneInfo(name)


@lru_cache(maxsize=None)
def day_start(day, zone_name):
    """Unix seconds of the first instant of local day `day` (gaps: the first existing one)."""
    tz = zone(zone_name)
    midnight = datetime.combine(day, time(0))
    first = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    earlier = datetime.combine(day, time(0), tzinfo=tz).replace(fold=1).astimezone(UTC)
    first = min(first, earlier)
    if first.astimezone(tz).replace(tzinfo=None) == midnight:
        return int(first.timestamp())
    # Midnight is in a gap: the first instant whose local time is at or after it.
    lo = int(first.timestamp()) - 30 * 3600
    hi = int(first.timestamp()) + 30 * 3600
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= midnight:
            hi = mid
        else:
            lo = mid
    return hi


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    cals = {}
    by_country = {}
    for cid, c in spec.items():
        cals[cid] = (c["time_zone"], np.busdaycalendar(weekmask="1111100", holidays=c["holidays"]))
        for cc in c["countries"]:
            by_country[cc] = cid
    out_lines = []
    todo = {cid: ([], [], []) for cid in cals}  # per calendar: output slot, d0, n
    epoch = date(1970, 1, 1)
    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            line = json.loads(raw)
            country = line["country"]
            cid = by_country.get(country) or by_country.get(country.upper())
            if cid is None:
                raise ValueError(f"unknown country {country!r}")
            tz_name = line.get("time_zone") or cals[cid][0]
            frm = line["from"]
            t = datetime.fromisoformat(frm.replace("Z", "+00:00"))
            d0 = t.astimezone(zone(tz_name)).date()
            b, c = line.get("business_days"), line.get("calendar_days")
            if (b is None) == (c is None):
                raise ValueError("give one of business_days or calendar_days")
            key = "business_days" if b is not None else "calendar_days"
            answer = {"deadline": None, "last_day": None, "country": country, "calendar": cid,
                      "time_zone": tz_name, "from": frm, "from_date": d0.isoformat(), key: b if b is not None else c}
            out_lines.append(answer)
            if b is not None:
                slots, d0s, ns = todo[cid]
                slots.append(len(out_lines) - 1)
                d0s.append((d0 - epoch).days)
                ns.append(b)
            else:
                fill(answer, d0 + timedelta(days=c), tz_name)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out_lines.append({"error": str(e), "line": number})
    for cid, (slots, d0s, ns) in todo.items():
        if not slots:
            continue
        days = np.busday_offset(np.array(d0s, dtype="datetime64[D]"), np.array(ns),
                                roll="backward", busdaycal=cals[cid][1])
        for slot, last in zip(slots, days.astype(int).tolist()):
            answer = out_lines[slot]
            fill(answer, epoch + timedelta(days=last), answer["time_zone"])
    w = sys.stdout.write
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for a in out_lines:
        w(dumps(a))
        w("\n")


def fill(answer, last_day, tz_name):
    secs = day_start(last_day + timedelta(days=1), tz_name)
    answer["deadline"] = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer["last_day"] = last_day.isoformat()


if __name__ == "__main__":
    main()
