from __future__ import annotations

from typing import Any

import pytest

from chaoslab.errors import SpecError
from chaoslab.faults import build
from chaoslab.netrules import Netem


def test_delay_and_jitter_are_durations_turned_into_netem_milliseconds() -> None:
    fault = build("network-degrade", {"delay": "1500ms", "jitter": 0.2})
    assert fault.params.netem == Netem(delay_ms=1500, jitter_ms=200)
    assert build("network-degrade", {"loss": 10}).params.netem is None


@pytest.mark.parametrize(("params", "message"), [
    ({}, "nothing to degrade"),
    ({"loss": 0}, "nothing to degrade"),
    ({"loss": 120}, "loss 120 must be a percentage"),
    ({"jitter": "10ms"}, "jitter needs a delay"),
    ({"delay": "soon"}, "delay: 'soon' is not a duration"),
])
def test_meaningless_settings_are_refused_with_the_parameter(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("network-degrade", params)
