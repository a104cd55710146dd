"""The README stays true: its settings table is the one the code generates."""

from __future__ import annotations

from presence.config import settings_table
from tests.conftest import REPO


def test_readme_lists_every_setting_as_the_code_defines_it() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert block == settings_table(), "regenerate with: python scripts/sync_readme_settings.py"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.index("make run") < readme.index("## Architecture")
    assert "make test" in readme
