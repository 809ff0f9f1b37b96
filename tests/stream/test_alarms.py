"""Alarms per sensor: k of n raise, m normal readings clear, one flood alarm per site, and the
same events (with the same ids) when the same readings are judged again from a checkpoint."""

from __future__ import annotations

import random

import msgspec
import pytest

from app.stream.alarms import AlarmBook, AlarmEvent, AlarmPolicy, Judged, PartitionState

POLICY = AlarmPolicy(raise_k=3, window_n=5, clear_m=4, flood_limit=3, flood_window_s=60.0)


def reading(sensor: str, flagged: bool, time: float, cause: str, site: str = "s1") -> Judged:
    return Judged(
        site=site,
        sensor=f"{site}.{sensor}",
        flagged=flagged,
        score=0.7 if flagged else 0.4,
        top_feature="voltage" if flagged else None,
        out_of_range=[],
        timestamp=f"t{time}",
        time=time,
        cause=cause,
    )


def run(book: AlarmBook, flags: list[tuple[str, bool]], start: int = 0) -> list[AlarmEvent]:
    events = []
    for i, (sensor, flagged) in enumerate(flags, start):
        events += book.judge(reading(sensor, flagged, float(i), f"{i}.0"), "m1")
    return events


def states(events: list[AlarmEvent]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.sensor, e.state) for e in events]


def test_k_of_n_flagged_readings_raise_and_m_normal_ones_clear() -> None:
    book = AlarmBook(POLICY)
    flags = [True, False, True, False, True] + [False] * 3 + [True] + [False] * 4
    events = run(book, [("a", f) for f in flags])
    assert states(events) == [("sensor", "s1.a", "raised"), ("sensor", "s1.a", "cleared")]
    assert events[0].msg_id == "s1.a:raised:4.0"  # the fifth reading, the third flagged
    assert events[0].score == 0.7
    assert events[0].top_feature == "voltage"
    assert events[1].msg_id == "s1.a:cleared:12.0"  # the 4th normal reading after the last flag
    run(book, [("a", False)], start=len(flags))  # the last flag leaves its window of 5
    assert book.sensors == {}  # at rest again: nothing kept


def test_a_flickering_sensor_does_not_page_and_a_normal_one_is_not_stored() -> None:
    book = AlarmBook(POLICY)
    events = run(book, [("a", i % 3 == 0) for i in range(60)] + [("b", False)] * 20)
    assert states(events) == []  # one flag in three never reaches 3 of 5
    assert "s1.b" not in book.sensors


def test_a_site_flood_sends_one_alarm_and_then_what_it_hid() -> None:
    book = AlarmBook(POLICY)
    burst = [(s, True) for s in "abcdef" for _ in range(3)]  # six sensors raise within 18 s
    events = run(book, burst)
    assert states(events) == [
        ("sensor", "s1.a", "raised"),
        ("sensor", "s1.b", "raised"),
        ("sensor", "s1.c", "raised"),
        ("flood", "s1", "raised"),
    ]
    assert events[-1].sensors == ["s1.a", "s1.b", "s1.c", "s1.d"]
    # d, e, f are raised but hidden; a clears during the flood (hidden too).
    events = run(book, [("a", False)] * 4, start=len(burst))
    assert states(events) == []
    # A minute later the window has emptied: the flood clears, then what it hid is sent.
    events = run(book, [("b", True)], start=200)
    assert states(events) == [
        ("flood", "s1", "cleared"),
        ("sensor", "s1.a", "cleared"),
        ("sensor", "s1.d", "raised"),
        ("sensor", "s1.e", "raised"),
        ("sensor", "s1.f", "raised"),
    ]
    assert events[0].sensors == ["s1.b", "s1.c", "s1.d", "s1.e", "s1.f"]


def test_sites_flood_on_their_own() -> None:
    book = AlarmBook(POLICY)
    events = []
    for i, site in enumerate(["s1", "s2"] * 3 + ["s1"]):
        for j in range(3):
            events += book.judge(reading(f"x{i}", True, i * 3 + j, f"{i}.{j}", site), "m1")
    # Three raises at each site are within the limit; the fourth at s1 floods s1 alone.
    assert [(e.kind, e.sensor) for e in events].count(("sensor", "s2.x1")) == 1
    assert [(e.kind, e.sensor) for e in events if e.kind == "flood"] == [("flood", "s1")]
    assert len(events) == 7


@pytest.mark.parametrize("cut", [1, 17, 40, 77])
def test_judging_again_from_a_checkpoint_gives_the_same_events(cut: int) -> None:
    rng = random.Random(cut)
    flags = [(rng.choice("abcdefgh"), rng.random() < 0.45) for _ in range(400)]
    whole = run(AlarmBook(POLICY), flags)
    first = AlarmBook(POLICY)
    before = run(first, flags[:cut])
    saved = msgspec.msgpack.encode(first.checkpoint(cut))
    restored = AlarmBook.restore(POLICY, msgspec.msgpack.decode(saved, type=PartitionState))
    after = run(restored, flags[cut:], start=cut)
    assert [e.msg_id for e in before + after] == [e.msg_id for e in whole]
    assert len(whole) > 5


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        AlarmPolicy(raise_k=6, window_n=5)
