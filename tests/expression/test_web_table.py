"""The page's copy of the expression table (presence/web/expression.js) is the server's."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from presence.expression import EXPRESSIONS
from presence.expression.blendshapes import arkit_weights
from tests.conftest import REPO


def test_the_web_table_matches_the_python_table() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install it with `apt-get install nodejs` to test the web client")
    script = (
        "import('./presence/web/expression.js').then(m => console.log(JSON.stringify("
        f"Object.fromEntries({json.dumps(list(EXPRESSIONS))}.map(n => [n, m.expressionWeights(n, 1)])))))"
    )
    out = subprocess.run([node, "-e", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    web = json.loads(out.stdout)
    for name in EXPRESSIONS:
        assert web[name] == pytest.approx(arkit_weights(name, 1.0)), name
