"""Benchmark of the slot engine against the cost of merely sorting its busy list.

Run: ``.venv/bin/python bench/slots.py``. It times the engine alone, in this process (no HTTP,
no database: about a tenth of a cold slots request; bench/pages.py and bench/busy.py time the
whole request). Absolute times depend on the machine, so the engine
is measured against ``sorted()`` of the same busy list in the same run: the engine has to
look at every busy interval at least once, and a sort is the honest floor for that. Targets:
engine <= 5x sort at 10,000 busy intervals, and <= 12x growth from 1,000 to 10,000 (an
engine that compared every slot with every busy interval would grow about 10x per 10x on
its own and be far above the sort).

At 1,000 the ratio to the sort is high because a 0.1 ms sort is smaller than the fixed cost
of building 31 days of windows; at 10,000 the calendar is saturated (an interval every few
minutes), so nothing is offered, yet every busy interval is still indexed and every
candidate checked.
"""

import random
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Targets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.booking.availability import Busy, HostRules, MeetingRules, slots  # noqa: E402

REPEATS = 15
DAYS = 31
START = datetime(2026, 3, 1, tzinfo=UTC)  # spans Berlin's spring-forward on 29 March
END = START + timedelta(days=DAYS)
HOST = HostRules(
    timezone="Europe/Berlin",
    weekly={day: (("09:00", "17:00"),) for day in range(5)},
    overrides={},
)
MEETING = MeetingRules(
    slug="intro",
    duration=timedelta(minutes=30),
    buffer_before=timedelta(minutes=10),
    buffer_after=timedelta(minutes=10),
    window_days=60,
)


def random_busy(count: int, seed: int) -> list[Busy]:
    """`count` busy intervals of 5 min to 3 h, starting anywhere in the 31 days."""
    rng = random.Random(seed)
    minutes = DAYS * 24 * 60
    busy = []
    for _ in range(count):
        start = START + timedelta(minutes=rng.randrange(minutes))
        length = timedelta(minutes=rng.randrange(5, 181))
        busy.append(Busy(start, start + length, f"calendar {rng.randrange(4)}"))
    return busy


def best(run: Callable[[], object]) -> float:
    """Best of `REPEATS` in seconds: the least disturbed run is the most repeatable figure."""
    return min(timeit.repeat(run, number=1, repeat=REPEATS))


def measure(count: int) -> tuple[float, float, int]:
    busy = random_busy(count, seed=count)
    engine = best(lambda: slots(HOST, MEETING, busy, [], START, START, END))
    sort = best(lambda: sorted(busy, key=lambda b: b.start))
    offered = len(slots(HOST, MEETING, busy, [], START, START, END))
    return engine, sort, offered


def main() -> None:
    results = {count: measure(count) for count in (1_000, 10_000)}
    print(f"slots: the engine alone over {DAYS} days, best of {REPEATS}")
    for count, (engine, sort, offered) in results.items():
        print(
            f"  {count:>6} busy: engine {engine * 1e3:7.2f} ms, sort {sort * 1e3:6.2f} ms "
            f"({offered} slots offered)"
        )
    growth = results[10_000][0] / results[1_000][0]
    ratio = results[10_000][0] / results[10_000][1]
    targets = Targets()
    targets.check("engine at 10k busy", f"{ratio:.2f}× sorted()", "≤ 5×", ratio <= 5)
    targets.check("engine growth 1k → 10k busy", f"{growth:.2f}×", "≤ 12×", growth <= 12)
    targets.summary()


if __name__ == "__main__":
    main()
