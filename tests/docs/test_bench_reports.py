"""A report whose prose lives in a template re-renders, from its committed JSON, to exactly the
committed Markdown: the template and the generator stay in step with the docs."""

from __future__ import annotations

import json
import re

from presence.bench._pipecat_report import render
from tests.conftest import REPO

DOCS = REPO / "docs" / "benchmarks"


def test_the_pipecat_report_renders_from_its_json_as_committed() -> None:
    committed = (DOCS / "pipecat.md").read_text()
    body = committed.split("\n", 1)[1] if committed.startswith("<!-- generated") else committed
    match = re.search(r"Command: `([^`]*)`", body)
    assert match, "the report names its command"
    results = json.loads((DOCS / "pipecat.json").read_text())
    assert render(results, match.group(1)) == body.rstrip("\n")
