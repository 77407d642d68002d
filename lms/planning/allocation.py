"""割当: dividing a session's (or a course's) seats among the municipalities that asked for them.

The method, as the 年間研修計画 states it to every training office:

1. **Guarantee (保障枠).** Every requesting municipality first gets ``minimum`` seats (1 by
   default), or its whole request if smaller. When the seats do not reach every requester,
   they go one at a time in the order of the tie rule below until none is left.
2. **Proportional share (按分).** The seats left are divided in proportion to what each
   municipality still lacks (request − guarantee): share = left × lacking ÷ total lacking.
   Each gets the whole part of its share (切り捨て).
3. **Remainder (端数調整).** The seats still left go one each to the largest fractional
   parts of the shares (the largest-remainder method, 最大剰余法).
4. Nobody gets more than it asked for, the total never exceeds the capacity, and when the
   capacity covers every request each municipality gets exactly its request (the seats
   left over stay unallocated, for release later).

**Tie rule** (whenever two municipalities are equal): the higher priority first (the
survey's 優先度, 1 = highest), then the larger request, then the lower municipality code
(全国地方公共団体コード) — so the result depends only on the inputs: the same survey always
gives the same allocation.

Exact arithmetic (``fractions.Fraction``): no floating-point rounding decides a seat.

Like every largest-remainder method it keeps each share within one seat of the exact
proportion (a municipality never falls below its share rounded down), but it is not
house-monotone: with one seat more a remainder seat can, rarely, move from one municipality
to another (the "Alabama paradox"). Allocations are run once on the final capacities and
then adjusted by hand with a reason, so this is stated rather than engineered away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Demand:
    """One municipality's request for one session (or course)."""

    municipality_id: int
    code: str  # 団体コード: the last tie-breaker
    requested: int
    priority: int = 3  # 1 (highest) … 5

    def order_key(self) -> tuple:
        return (self.priority, -self.requested, self.code)


@dataclass(frozen=True)
class Share:
    """What one municipality gets, and why."""

    municipality_id: int
    requested: int
    guaranteed: int
    exact: Fraction  # the proportional share before rounding
    proportional: int  # its whole part
    remainder_bonus: int  # 0 or 1
    seats: int

    @property
    def exact_display(self) -> str:
        """The share as offices write it: one decimal place (7.4), whole numbers as such."""
        value = round(float(self.exact), 1)
        return f"{value:.1f}" if value != int(value) else str(int(value))


def allocate(capacity: int, demands: Iterable[Demand], *, minimum: int = 1) -> dict[int, Share]:
    """Divide ``capacity`` seats among ``demands`` (see the module's method). Demands of zero
    seats are ignored; one municipality may appear once."""
    if capacity < 0 or minimum < 0:
        raise ValueError("capacity and minimum must not be negative")
    wanted = [d for d in demands if d.requested > 0]
    ids = [d.municipality_id for d in wanted]
    if len(set(ids)) != len(ids):
        raise ValueError("a municipality appears twice")
    ordered = sorted(wanted, key=Demand.order_key)

    # 1. Guarantee, in the tie order while seats last.
    guaranteed: dict[int, int] = {}
    left = capacity
    for demand in ordered:
        give = min(minimum, demand.requested, left)
        guaranteed[demand.municipality_id] = give
        left -= give

    # 2. Proportional to what each still lacks.
    # Every share has the same denominator (the total lacking), so the arithmetic is done on
    # whole numerators: share = numerator / denominator exactly, no rounding anywhere.
    lacking = {d.municipality_id: d.requested - guaranteed[d.municipality_id] for d in ordered}
    total_lacking = sum(lacking.values())
    if total_lacking and left < total_lacking:
        numerators, denominator = {mid: left * n for mid, n in lacking.items()}, total_lacking
    else:  # every lack can be met (or there is none): each share is the whole lack
        numerators, denominator = dict(lacking), 1
    exact = {mid: Fraction(num, denominator) for mid, num in numerators.items()}
    proportional = {mid: num // denominator for mid, num in numerators.items()}  # floor: shares are ≥ 0
    left -= sum(proportional.values())

    # 3. Largest remainders, ties by the tie rule (ordered's position).
    position = {d.municipality_id: i for i, d in enumerate(ordered)}
    remainder = {mid: num % denominator for mid, num in numerators.items()}
    by_remainder = sorted((mid for mid in numerators if remainder[mid] > 0),
                          key=lambda mid: (-remainder[mid], position[mid]))
    bonus = dict.fromkeys(exact, 0)
    for mid in by_remainder:
        if left <= 0:
            break
        bonus[mid] = 1
        left -= 1

    result: dict[int, Share] = {}
    for demand in ordered:
        mid = demand.municipality_id
        seats = guaranteed[mid] + proportional[mid] + bonus[mid]
        result[mid] = Share(municipality_id=mid, requested=demand.requested, guaranteed=guaranteed[mid],
                            exact=exact[mid], proportional=proportional[mid], remainder_bonus=bonus[mid], seats=seats)
    return result


def split_among_sessions(course_seats: Iterable[Demand], capacities: Iterable[tuple[int, int]]) -> dict[int, dict[int, int]]:
    """A plan surveyed per course: divide each municipality's seats in the course
    (``course_seats``: ``requested`` is the seats it was allocated for the whole course) among
    the course's sessions (``capacities``: (session id, capacity) in the order they are held).

    Session by session, in that order, the session's capacity is divided by the same method
    without a guarantee, in proportion to the seats each municipality has still to place.
    Each session's total stays within its capacity and, because the course's allocation
    never exceeds the sum of its sessions' capacities, every allocated seat is placed: each
    municipality's parts add up to its course seats. Returns {session id: {municipality id:
    seats}} (zeros included for every municipality with course seats).
    """
    wanted = [d for d in course_seats if d.requested > 0]
    remaining = {d.municipality_id: d for d in wanted}
    result: dict[int, dict[int, int]] = {}
    for session_id, capacity in capacities:
        shares = allocate(capacity, remaining.values(), minimum=0)
        result[session_id] = {d.municipality_id: shares[d.municipality_id].seats if d.municipality_id in shares else 0
                              for d in wanted}
        for mid, share in shares.items():
            left = remaining[mid].requested - share.seats
            if left > 0:
                remaining[mid] = Demand(mid, remaining[mid].code, left, remaining[mid].priority)
            else:
                del remaining[mid]
    return result
