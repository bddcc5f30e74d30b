"""Benchmark of the public pages that invitees wait for, against ``/healthz`` in the same run.

Run: ``.venv/bin/python bench/pages.py`` (needs wrk). A temporary Kairos (bench/harness.py:
gunicorn 2 workers × 4 threads, the worker, SQLite) gets ``--hosts`` hosts whose busy time —
5,000 events each over the next year — arrives the real way: an ICS feed connected through
the API and read by the worker. wrk (16 connections) then drives, in turns over ``--rounds``
rounds of ``--seconds`` s each:

  /healthz                 one ``SELECT 1``: the baseline every figure is divided by;
  booking page, cold       ``/<host>/intro?month=…&tz=…`` rotating over hosts × 12 months ×
                           37 zones (one per UTC offset), so neither the 3-second page cache
                           nor the per-range memos answer;
  slots API month, cold    ``/api/v1/hosts/<host>/intro/slots?start=…&end=…&tz=…``: a month
                           (31 days) from any day of the year, rotating the same way;
  slots API month, warm    one URL over and over: what the caches make of a popular page.

Targets (issue #13): the booking page reaches ≥ 50% of /healthz's throughput; a cold month
of slots takes ≤ 10× /healthz's median latency. The warm case has no target; it shows what
the caches are worth. Each ratio is taken per round, and the median of the rounds reported.
"""

from __future__ import annotations

import argparse
import itertools
import random
from datetime import UTC, datetime, timedelta

from harness import (
    HEALTHZ,
    ZONES,
    Case,
    Instance,
    Request,
    Targets,
    interleave,
    log,
    median,
    month_days,
    months_ahead,
    per_round,
    require_wrk,
    shuffled,
)

EVENTS = 5000
TYPE = "intro"
MAX_URLS = 4000  # a sample of the month windows is plenty to keep the caches cold


def setup(instance: Instance, hosts: int) -> list[str]:
    """Hosts with a meeting type and a synced 5,000-event feed each; their slugs."""
    slugs = [f"host{i:02d}" for i in range(hosts)]
    instance.serve_feeds({f"/{s}.ics": (EVENTS, i, 365) for i, s in enumerate(slugs)})
    made = instance.create_hosts(slugs)
    instance.start()
    for host in made:  # before the feed: the window read into the cache follows the types
        instance.add_meeting_type(
            host,
            slug=TYPE,
            duration_minutes=30,
            buffer_before_minutes=10,
            buffer_after_minutes=10,
            window_days=365,
        )
    connected = instance.connect_feeds([(host, f"/{host.slug}.ics") for host in made])
    for host, (connection, _) in zip(made, connected, strict=True):
        instance.wait_synced(host, connection)
    log(f"cached busy intervals: {instance.cached_intervals()}")
    return slugs


def cases(slugs: list[str]) -> list[Case]:
    pages = [
        Request("GET", f"/{slug}/{TYPE}?month={month}&tz={zone}")
        for slug, month, zone in itertools.product(slugs, months_ahead(12), ZONES)
    ]
    today = datetime.now(UTC).date()
    windows = [
        (slug, today + timedelta(days=day), zone)
        for slug, day, zone in itertools.product(slugs, range(334), ZONES)
    ]
    api = [
        Request(
            "GET",
            f"/api/v1/hosts/{slug}/{TYPE}/slots?start={first}&end={first + timedelta(days=30)}"
            f"&tz={zone}",
        )
        for slug, first, zone in random.Random(1).sample(windows, min(MAX_URLS, len(windows)))
    ]
    first, last = month_days(months_ahead(2)[1])
    warm = Request("GET", f"/api/v1/hosts/{slugs[0]}/{TYPE}/slots?start={first}&end={last}")
    return [
        Case("healthz", [Request("GET", HEALTHZ)]),
        Case("booking page cold", shuffled(pages, 2)),
        Case("slots month cold", shuffled(api, 3)),
        Case("slots month warm", [warm]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    require_wrk()

    with Instance("pages") as instance:
        slugs = setup(instance, args.hosts)
        plan = cases(slugs)
        for case in plan:  # each answers, before anything is timed
            status, _ = instance.request(case.requests[0].method, case.requests[0].path)
            if status != 200:
                raise SystemExit(f"{case.name}: {case.requests[0].path} answered {status}")
        results = interleave(instance, plan, args.rounds, args.seconds)

    print(
        f"pages: gunicorn 2 workers × 4 threads, wrk 16 connections, {args.rounds} rounds × "
        f"{args.seconds:g} s per case; {args.hosts} hosts × {EVENTS} busy intervals "
        "(ICS feed → worker); medians of the rounds"
    )
    for name, loads in results.items():
        failed = sum(x.status_errors + x.errors for x in loads)
        print(
            f"  {name:18} {median([x.rps for x in loads]):8.1f} req/s  "
            f"p50 {median([x.p50 for x in loads]):8.1f} ms  "
            f"p95 {median([x.p95 for x in loads]):8.1f} ms  "
            f"web CPU {median([x.cpu_ms for x in loads]):6.2f} ms/request"
            + (f"  ({failed} failed requests)" if failed else "")
        )
    targets = Targets()
    page_share = median(list(per_round(results, "booking page cold", "healthz", "rps")))
    targets.check(
        "booking page throughput",
        f"{page_share:.2f} of /healthz",
        "≥ 0.50",
        page_share >= 0.50,
    )
    cold = median(list(per_round(results, "slots month cold", "healthz", "p50")))
    targets.check("slots month cold p50", f"{cold:.1f}× /healthz", "≤ 10×", cold <= 10)
    # CPU per request: the cost behind the throughput ratio, which background load moves
    # far less (the ratio of throughputs is about the inverse of this when CPU-bound).
    cpu = median(
        [
            page.cpu_ms / base.cpu_ms
            for page, base in zip(results["booking page cold"], results["healthz"], strict=True)
            if base.cpu_ms
        ]
        or [0.0]
    )
    page_cpu = median([x.cpu_ms for x in results["booking page cold"]])
    base_cpu = median([x.cpu_ms for x in results["healthz"]])
    targets.context(
        "booking page cold, web CPU per request",
        f"{page_cpu:.2f} ms = {cpu:.1f}× /healthz ({base_cpu:.2f} ms)",
    )
    page_p50 = median(list(per_round(results, "booking page cold", "healthz", "p50")))
    targets.context("booking page cold p50", f"{page_p50:.1f}× /healthz")
    warm = median(list(per_round(results, "slots month warm", "healthz", "p50")))
    targets.context("slots month warm p50 (one URL: the cache case)", f"{warm:.1f}× /healthz")
    targets.summary()


if __name__ == "__main__":
    main()
