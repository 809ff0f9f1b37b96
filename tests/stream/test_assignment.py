"""Which worker should hold which partition: every worker computes the same answer from the
member list, the shares are balanced, and a member joining or leaving moves few partitions."""

from __future__ import annotations

import math
from collections import Counter

from app.stream.leases import assignment

MEMBERS = [f"host{i}-{1000 + 7 * i}" for i in range(40)]


def test_every_partition_has_one_holder_and_the_answer_does_not_depend_on_order() -> None:
    members = MEMBERS[:5]
    chosen = assignment(8, members)
    assert sorted(chosen) == list(range(8))
    assert set(chosen.values()) <= set(members)
    assert assignment(8, list(reversed(members))) == chosen


def test_shares_differ_by_one_at_most_and_three_split_eight_3_3_2() -> None:
    for start in range(30):
        for count in (2, 3, 4, 5, 7, 8, 11):
            members = MEMBERS[start : start + count]
            shares = Counter(assignment(8, members).values())
            held = [shares.get(m, 0) for m in members]
            assert max(held) == math.ceil(8 / count), (members, shares)
            assert min(held) == 8 // count, (members, shares)  # nobody idle while 8 go round
    for start in range(30):
        three = Counter(assignment(8, MEMBERS[start : start + 3]).values())
        assert sorted(three.values()) == [2, 3, 3]


def test_a_member_joining_moves_few_partitions() -> None:
    moved = []
    for start in range(30):
        before = assignment(8, MEMBERS[start : start + 3])
        after = assignment(8, MEMBERS[start : start + 4])
        moved.append(sum(before[p] != after[p] for p in range(8)))
    # The newcomer's fair share is 2; a reshuffle would move about 6 of 8.
    assert sum(moved) / len(moved) <= 3.5, moved


def test_no_members_no_holders() -> None:
    assert assignment(8, []) == {}
