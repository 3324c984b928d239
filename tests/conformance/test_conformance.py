"""Every scenario of scenarios/ against every language's example (see driver.py).

`make test-conformance` runs it for all four languages; CONFORMANCE_LANGUAGES
(space-separated) narrows it, e.g. while working on one client.
"""

import json
import os
from pathlib import Path

import pytest
from conformance.driver import LANGUAGES, run
from conformance.scenario_peers import unavailable

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.json"))
CHOSEN = os.environ.get("CONFORMANCE_LANGUAGES", " ".join(LANGUAGES)).split()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
@pytest.mark.parametrize("language", CHOSEN)
def test_scenario(language: str, scenario: Path) -> None:
    played = json.loads(scenario.read_text())
    reason = unavailable(played)
    if reason is not None:
        pytest.skip(reason)
    run(language, played)
