"""Benchmark of booking: the public API POST on distinct free slots, and the same-slot race.

Run: ``.venv/bin/python bench/booking.py`` (needs wrk). A temporary Kairos (bench/harness.py:
gunicorn 2 workers × 4 threads, the worker, SQLite) gets ``--hosts`` hosts, each with a
30-minute meeting type (no buffers, so booking one slot leaves its neighbours free) and a
5,000-event ICS feed connected through the API and synced by the worker. Free starts are
read from the slots API; then wrk (16 connections) takes turns over ``--rounds`` rounds of
``--seconds`` s between

  /healthz        the baseline of the same round;
  booking POST    sent for ``--seconds`` s, then every answer awaited and timed (at most
                  120 s more: today a booking takes seconds, and a plain timed run would
                  count only the fast ones and leave the rest running into the next case): ``POST
                  /api/v1/hosts/<host>/book/bookings``, every request a different free start,
                  alternating between hosts (each round its own share of starts) so the
                  per-host lock is not all that is measured.

Before the rounds, a few bookings one at a time give the latency of a booking alone (context).
Targets (issue #13, absolute): p50 ≤ 50 ms and p95 ≤ 150 ms; each is also shown as a
multiple of /healthz's p50 in the same round, which is what stays comparable across machines.

Then the race: ``--racers`` invitees POST the same free start at the same instant, with the
worker running. Target: exactly one 201 and every other answer 409 ("just taken"), no 422.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from harness import (
    HEALTHZ,
    Case,
    Host,
    Instance,
    Request,
    Targets,
    interleave,
    log,
    median,
    per_round,
    require_wrk,
)

EVENTS = 5000
TYPE = "book"
ALONE = 5


def setup(instance: Instance, hosts: int) -> list[Host]:
    slugs = [f"host{i:02d}" for i in range(hosts)]
    instance.serve_feeds({f"/{s}.ics": (EVENTS, 100 + i, 365) for i, s in enumerate(slugs)})
    made = instance.create_hosts(slugs)
    instance.start()
    for host in made:  # before the feed: the window read into the cache follows the types
        instance.add_meeting_type(host, slug=TYPE, duration_minutes=30, window_days=365)
    connected = instance.connect_feeds([(host, f"/{host.slug}.ics") for host in made])
    for host, (connection, _) in zip(made, connected, strict=True):
        instance.wait_synced(host, connection)
    log(f"cached busy intervals: {instance.cached_intervals()}")
    return made


def free_starts(instance: Instance, host: Host) -> list[str]:
    """Every start the host offers in the coming year (from two hours on), in UTC."""
    earliest = datetime.now(UTC) + timedelta(hours=2)
    first = earliest.date()
    starts: list[str] = []
    while first < earliest.date() + timedelta(days=365):
        last = first + timedelta(days=61)
        starts += instance.slots(host, TYPE, first.isoformat(), last.isoformat(), "UTC")
        first = last + timedelta(days=1)
    return [s for s in starts if datetime.fromisoformat(s) >= earliest]


def booking(host: Host, start: str, who: str) -> Request:
    body = {"start": start, "name": "Bench", "email": f"{who}@invitee.example", "timezone": "UTC"}
    return Request("POST", f"/api/v1/hosts/{host.slug}/{TYPE}/bookings", json.dumps(body))


def alone(instance: Instance, requests: list[Request]) -> float:
    """Median milliseconds of ``requests`` sent one after another (no concurrency)."""
    times = []
    for request in requests:
        started = time.perf_counter()
        status, answer = instance.request("POST", request.path, json.loads(request.body))
        times.append((time.perf_counter() - started) * 1000)
        if status != 201:
            raise SystemExit(f"a booking alone answered {status}: {answer}")
    return median(times)


def race(instance: Instance, host: Host, start: str, racers: int) -> Counter[int]:
    """``racers`` POSTs of one start, released together; the count of each status."""
    barrier = threading.Barrier(racers)
    codes: list[int] = [0] * racers

    def go(i: int) -> None:
        request = booking(host, start, f"racer{i}")
        barrier.wait()
        codes[i] = instance.request("POST", request.path, json.loads(request.body))[0]

    threads = [threading.Thread(target=go, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--racers", type=int, default=16)
    args = parser.parse_args()
    require_wrk()

    with Instance("booking") as instance:
        hosts = setup(instance, args.hosts)
        per_host = {host.slug: free_starts(instance, host) for host in hosts}
        # One start kept aside for the race; the rest alternate between hosts.
        contested = per_host[hosts[0].slug].pop()
        columns = [[(host, s) for s in per_host[host.slug]] for host in hosts]
        requests = [
            booking(host, start, f"invitee{i}")
            for i, (host, start) in enumerate(
                pair for row in zip(*columns, strict=False) for pair in row
            )
        ]
        log(f"{len(requests)} distinct free starts over {len(hosts)} hosts")
        single = alone(instance, requests[:ALONE])
        requests = requests[ALONE:]
        results = interleave(
            instance,
            [
                Case("healthz", [Request("GET", HEALTHZ)]),
                Case("booking POST", requests, once=True),
            ],
            args.rounds,
            args.seconds,
        )
        codes = race(instance, hosts[0], contested, args.racers)

    posts = results["booking POST"]
    print(
        f"booking: gunicorn 2 workers × 4 threads, wrk 16 connections, {args.rounds} rounds × "
        f"{args.seconds:g} s per case (bookings: then every answer awaited); {args.hosts} "
        f"hosts × {EVENTS} busy intervals (ICS feed → worker); medians of the rounds"
    )
    for name, loads in results.items():
        print(
            f"  {name:14} {median([x.rps for x in loads]):8.1f} req/s  "
            f"p50 {median([x.p50 for x in loads]):8.1f} ms  "
            f"p95 {median([x.p95 for x in loads]):8.1f} ms"
        )
    refused = sum(x.status_errors for x in posts)
    broken = sum(x.errors for x in posts)
    if refused or broken:
        print(f"  booking POST: {refused} answers ≥ 400, {broken} socket errors or timeouts")
    targets = Targets()
    p50, p95 = median([x.p50 for x in posts]), median([x.p95 for x in posts])
    x50 = median(list(per_round(results, "booking POST", "healthz", "p50")))
    x95 = median(
        [post.p95 / base.p50 for post, base in zip(posts, results["healthz"], strict=True)]
    )
    targets.check(
        "booking POST p50", f"{p50:.0f} ms = {x50:.0f}× /healthz p50", "≤ 50 ms", p50 <= 50
    )
    targets.check(
        "booking POST p95", f"{p95:.0f} ms = {x95:.0f}× /healthz p50", "≤ 150 ms", p95 <= 150
    )
    targets.context(f"booking POST alone (median of {ALONE}, one at a time)", f"{single:.0f} ms")
    targets.context("booking POST throughput", f"{median([x.rps for x in posts]):.1f} bookings/s")
    won, taken, invalid = codes[201], codes[409], codes[422]
    other = sum(codes.values()) - won - taken - invalid
    targets.check(
        f"same-slot race, {args.racers} invitees",
        f"{won}× 201, {taken}× 409, {invalid}× 422" + (f", {other} other" if other else ""),
        f"1× 201, {args.racers - 1}× 409",
        won == 1 and taken == args.racers - 1,
    )
    targets.summary()


if __name__ == "__main__":
    main()
