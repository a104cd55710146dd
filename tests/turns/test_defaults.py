"""One source for the turn-taking defaults: the library and the server agree on them."""

from __future__ import annotations

from presence.config import Settings
from presence.session import defaults
from presence.session.endpointing import FixedSilence, make_rule
from presence.session.turns import TurnConfig


def test_the_server_settings_and_the_turn_machine_share_their_defaults() -> None:
    settings, config = Settings(), TurnConfig()
    assert settings.confirm_ms == config.confirm_ms == FixedSilence().confirm_ms == defaults.CONFIRM_MS
    assert settings.speculate_ms == config.speculate_ms == defaults.SPECULATE_MS
    assert settings.min_barge_in_ms == config.min_barge_in_ms == defaults.MIN_BARGE_IN_MS
    assert settings.final_ms == defaults.FINAL_MS


def test_a_turn_config_without_a_rule_confirms_as_the_default_server_does() -> None:
    settings = Settings()
    served = make_rule(settings.confirm_rule, settings.confirm_ms, settings.final_ms)
    assert TurnConfig().confirmation_rule() == served == FixedSilence(800.0)
