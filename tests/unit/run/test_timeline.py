from pathlib import Path

from chaoslab.timeline import Timeline


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timeline_round_trips_through_its_file(tmp_path: Path) -> None:
    clock = FakeClock()
    tl = Timeline.start(clock=clock)
    clock.now += 1.5
    tl.sample("etcd", "cp1", reachable=True, leader="cp1", term=2, index=9, error=None)
    clock.now += 0.5
    tl.event("inject", fault="kill-process", index=0, targets=["cp1"])
    tl.save(tmp_path / "timeline.jsonl")
    back = Timeline.load(tmp_path / "timeline.jsonl")
    assert [(s.t, s.subject, s.values["term"]) for s in back.samples_of("etcd")] == [(1.5, "cp1", 2)]
    assert [(e.t, e.detail["fault"]) for e in back.events_of("inject")] == [(2.0, "kill-process")]
    assert back.end == 2.0
