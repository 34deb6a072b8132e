"""The fuzz suites together send at least 10,000 generated inputs a run (issue 16); each suite
fails a run in which it sent fewer than it planned (tests.fuzzing.ran)."""

from __future__ import annotations

from tests import test_fuzz_events, test_fuzz_frames, test_fuzz_http, test_fuzz_rest
from tests.fuzzing import PLANNED, planned

SUITES = {
    "events": test_fuzz_events,
    "rest": test_fuzz_rest,
    "frames": test_fuzz_frames,
    "http": test_fuzz_http,
}


def test_the_suites_plan_at_least_ten_thousand_inputs_together() -> None:
    assert set(SUITES) == set(PLANNED)
    assert sum(PLANNED.values()) >= 10_000
    for suite, module in SUITES.items():
        assert planned(suite) == module.INPUTS, suite  # what the suite sends is what it planned
