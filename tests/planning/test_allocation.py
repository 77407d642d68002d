"""割当: the allocation method's worked examples and its invariants on random surveys."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lms.planning.allocation import Demand, allocate, split_among_sessions


def demand(mid: int, requested: int, priority: int = 3) -> Demand:
    return Demand(municipality_id=mid, code=f"13{mid:03d}0", requested=requested, priority=priority)


def test_worked_example_guarantee_then_proportional_then_largest_remainder():
    # 30 seats; requests 12, 8, 5, 1 (total 26 ≤ 30 would fit) — make it scarce: 20 seats.
    shares = allocate(20, [demand(1, 12), demand(2, 8), demand(3, 5), demand(4, 1)])
    # Guarantee: 1 each (4 seats); left 16 over lacking 11 + 7 + 4 + 0 = 22.
    assert [shares[m].guaranteed for m in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert shares[1].exact == Fraction(16 * 11, 22) == 8
    assert shares[2].exact == Fraction(16 * 7, 22)  # 5.09…
    assert shares[3].exact == Fraction(16 * 4, 22)  # 2.90…
    # Whole parts 8 + 5 + 2 + 0 = 15 seats; 1 left goes to the largest remainder (0.90… of 3).
    assert [shares[m].proportional for m in (1, 2, 3, 4)] == [8, 5, 2, 0]
    assert [shares[m].remainder_bonus for m in (1, 2, 3, 4)] == [0, 0, 1, 0]
    assert [shares[m].seats for m in (1, 2, 3, 4)] == [9, 6, 4, 1]
    assert shares[3].exact_display == "2.9" and shares[1].exact_display == "8"


def test_enough_seats_give_everyone_their_request_and_leave_the_rest():
    shares = allocate(40, [demand(1, 12), demand(2, 8)])
    assert shares[1].seats == 12 and shares[2].seats == 8  # 20 seats stay unallocated


def test_fewer_seats_than_requesters_follow_priority_then_size_then_code():
    shares = allocate(3, [demand(1, 2, priority=3), demand(2, 9, priority=3), demand(3, 1, priority=1),
                          demand(4, 9, priority=3), demand(5, 4, priority=2)])
    # Order: 3 (priority 1), 5 (priority 2), then 2 and 4 (requests 9, 9: code 13002 < 13004), then 1.
    assert {m: s.seats for m, s in shares.items()} == {3: 1, 5: 1, 2: 1, 4: 0, 1: 0}


def test_equal_remainders_are_broken_by_the_tie_rule():
    # 5 seats, three requests of 3: guarantee 1 each, left 2 over lacking 2+2+2 → 0.66… each.
    shares = allocate(5, [demand(7, 3), demand(2, 3), demand(4, 3)])
    assert {m: s.seats for m, s in shares.items()} == {2: 2, 4: 2, 7: 1}


def test_a_larger_guarantee_and_zero_requests():
    shares = allocate(10, [demand(1, 5), demand(2, 0), demand(3, 2)], minimum=2)
    assert 2 not in shares
    assert shares[3].guaranteed == 2 and shares[3].seats == 2
    assert shares[1].seats == 5


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        allocate(-1, [demand(1, 1)])
    with pytest.raises(ValueError):
        allocate(5, [demand(1, 1), demand(1, 2)])


surveys = st.lists(
    st.tuples(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=5)),
    min_size=0, max_size=62,
)


@settings(max_examples=400, deadline=None)
@given(capacity=st.integers(min_value=0, max_value=400), survey=surveys, minimum=st.integers(min_value=0, max_value=3))
def test_invariants_on_random_surveys(capacity, survey, minimum):
    demands = [demand(i + 1, requested, priority) for i, (requested, priority) in enumerate(survey)]
    shares = allocate(capacity, demands, minimum=minimum)
    total_requested = sum(d.requested for d in demands)
    total = sum(s.seats for s in shares.values())
    assert total <= capacity  # never above capacity
    assert all(0 <= s.seats <= s.requested for s in shares.values())  # never above a request
    assert total == min(capacity, total_requested)  # no seat wasted while someone lacks one
    for share in shares.values():
        assert share.seats == share.guaranteed + share.proportional + share.remainder_bonus
        assert share.remainder_bonus in (0, 1)
        assert share.guaranteed <= min(minimum, share.requested)
    if capacity >= total_requested:
        assert all(s.seats == s.requested for s in shares.values())
    if capacity >= minimum * len(shares):
        assert all(s.guaranteed == min(minimum, s.requested) for s in shares.values())
    # Deterministic, whatever order the survey arrives in.
    assert allocate(capacity, list(reversed(demands)), minimum=minimum) == shares


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(min_value=0, max_value=300), survey=surveys)
def test_everyone_gets_their_exact_share_rounded_down_or_up(capacity, survey):
    """The quota rule of the largest-remainder method: after the guarantee, each municipality
    gets its exact proportional share rounded down or up, never further from it. (The method
    is not house-monotone — one seat more can, rarely, move a remainder seat elsewhere, the
    "Alabama paradox"; the module's docstring says so to the offices.)"""
    import math

    demands = [demand(i + 1, requested, priority) for i, (requested, priority) in enumerate(survey)]
    for share in allocate(capacity, demands).values():
        got = share.seats - share.guaranteed
        assert math.floor(share.exact) <= got <= math.ceil(share.exact)


# ---------------------------------------------------------------- a course's seats among its sessions


def test_a_course_allocation_is_divided_among_its_sessions_in_proportion():
    # A course of two sessions (10 and 10 seats): 千代田 got 15 seats of the course, 中央 5.
    parts = split_among_sessions([demand(1, 15), demand(2, 5)], [(101, 10), (102, 10)])
    # Session 101: 10 seats in proportion to 15 : 5 → 7.5 and 2.5; the remainder seat goes by
    # the tie rule (same priority, the larger request) to 千代田: 8 and 2. Session 102: the rest.
    assert parts == {101: {1: 8, 2: 2}, 102: {1: 7, 2: 3}}


def test_every_municipality_with_seats_has_a_row_in_every_session():
    parts = split_among_sessions([demand(1, 2), demand(2, 0)], [(101, 5), (102, 5)])
    assert parts == {101: {1: 2}, 102: {1: 0}}  # zero seats stay out; zero parts stay in


@settings(max_examples=300, deadline=None)
@given(capacities=st.lists(st.integers(min_value=0, max_value=80), min_size=1, max_size=8), survey=surveys,
       minimum=st.integers(min_value=0, max_value=3))
def test_a_course_split_places_every_seat_within_each_sessions_capacity(capacities, survey, minimum):
    demands = [demand(i + 1, requested, priority) for i, (requested, priority) in enumerate(survey)]
    sessions = [(1000 + i, c) for i, c in enumerate(capacities)]
    course = allocate(sum(capacities), demands, minimum=minimum)
    seats = [demand(mid, share.seats, next(d.priority for d in demands if d.municipality_id == mid))
             for mid, share in course.items()]
    parts = split_among_sessions(seats, sessions)
    for sid, capacity in sessions:
        assert sum(parts[sid].values()) <= capacity  # no session above its capacity
        assert all(n >= 0 for n in parts[sid].values())
    for mid, share in course.items():
        if share.seats:  # every seat of the course placed, none invented
            assert sum(parts[sid][mid] for sid, _ in sessions) == share.seats
    assert split_among_sessions(list(reversed(seats)), sessions) == parts  # deterministic
