"""Writes 1,000,000 JSON lines of the kind benches/deadline_batch.rs makes (random countries
SE/US/GB/DE, no zone or one of five, instants 2000-2100, 80 % business days, N in 0..40) to
stdout, for timing or profiling `cpor-worker deadline --batch` alone:
    python3 benches/deadline_lines.py > lines.jsonl
    perf record -g target/release/cpor-worker deadline --batch < lines.jsonl > /dev/null
"""
import datetime
import json
import random
import sys

random.seed(7)
START = 946684800  # 2000-01-01T00:00:00Z
ZONES = ["", "Europe/Stockholm", "America/New_York", "America/Havana", "Asia/Tokyo"]
out = sys.stdout
for _ in range(1_000_000):
    t = datetime.datetime.fromtimestamp(START + random.randrange(100 * 365 * 86400), datetime.timezone.utc)
    line = {"country": random.choice(["SE", "US", "GB", "DE"]), "from": t.strftime("%Y-%m-%dT%H:%M:%SZ")}
    zone = random.choice(ZONES)
    if zone:
        line["time_zone"] = zone
    line["business_days" if random.random() < 0.8 else "calendar_days"] = random.randrange(40)
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
