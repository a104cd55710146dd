"""The end-of-turn predictor: its text model, its fusion's decision table, its rule in the turn
machine, and the training command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from presence.audio.prosody import PauseCue
from presence.endofturn.predictor import FEATURES, EndOfTurnPredictor, PauseContext
from presence.endofturn.text import TextCompleteness, words
from presence.session.endpointing import FixedSilence, PredictorRule, make_rule
from presence.session.turns import Signal, TurnConfig, TurnState, TurnTaker

W = 512
MS_PER_W = 32
REPO = Path(__file__).resolve().parents[2]


def cue(pitch_st: float | None) -> PauseCue:
    return PauseCue(pitch_st, None, None, 0.5)


FUSIONS = ("fusion.json", "whisper/fusion.json", "script-words/fusion.json")


@pytest.fixture(scope="module", params=FUSIONS)
def shipped(request: pytest.FixtureRequest) -> EndOfTurnPredictor:
    """Every fusion in the repo: the default (pocketsphinx partials), Whisper's, the script's words."""
    return EndOfTurnPredictor.load(REPO / "presence" / "endofturn" / "weights" / request.param)


# ----------------------------------------------------------------------------- text


def test_transcripts_are_normalised_like_asr_output() -> None:
    assert words("Don't ask me, Whisper says. ALL YEAR!") == ["don't", "ask", "me", "whisper", "says", "all", "year"]
    text = TextCompleteness.load()
    assert text.logit("she had your dark suit in greasy wash water all year.") == text.logit(
        "She had your dark suit in greasy wash water all year"
    )


@pytest.mark.parametrize(
    ("complete", "dangling"),
    [
        ("i think that's true", "i think that's"),
        ("we went to the store", "we went to the"),
        ("yeah", "and"),
        ("it's a good idea", "it's a good idea and"),
    ],
)
def test_the_text_model_scores_a_finished_phrase_above_the_same_phrase_left_hanging(
    complete: str, dangling: str
) -> None:
    text = TextCompleteness.load()
    assert text.probability(complete) > 0.5 > text.probability(dangling)


# ----------------------------------------------------------------------------- fusion


def context(silence_ms: float, transcript: str | None, pitch_st: float | None = -3.0) -> PauseContext:
    return PauseContext(silence_ms, cue(pitch_st), transcript, pause_max_prob=0.1, run_ms=1500)


def test_shipped_fusion_decision_table(shipped: EndOfTurnPredictor) -> None:
    """Constructed pauses, ordered as a listener would: finished words with a falling pitch are
    likelier ends than the same pause after a dangling word, and more silence never lowers it."""
    finished = "we serve rhubarb pie after the talk"
    dangling = "we serve rhubarb pie after the"
    for ms in (64, 160, 320, 640):
        assert shipped.probability(context(ms, finished)) > shipped.probability(context(ms, dangling))
        assert shipped.probability(context(ms, finished)) > shipped.probability(context(ms, finished, pitch_st=+4.0))
    for transcript in (finished, dangling, None):
        probs = [shipped.probability(context(ms, transcript)) for ms in (32, 96, 192, 320, 640, 960)]
        assert probs == sorted(probs)
    assert shipped.probability(context(960, finished)) > 0.9
    assert shipped.probability(context(96, dangling, pitch_st=+3.0)) < 0.5


@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_weights_name_every_feature_and_refuse_a_mismatch(name: str) -> None:
    data = json.loads((REPO / "presence" / "endofturn" / "weights" / name).read_text())
    assert list(data["weights"]) == list(FEATURES)
    assert "Switchboard" in data["attribution"] and "No TIMIT" in data["attribution"]
    assert data["command"].startswith("python -m presence.endofturn.train")
    with pytest.raises(ValueError, match="weights"):
        EndOfTurnPredictor((1.0, 2.0), TextCompleteness.load())


def hand_made(text: TextCompleteness) -> EndOfTurnPredictor:
    """Only the words and the silence count: z = 2·text_logit + 4·silence_s − 3."""
    named = dict.fromkeys(FEATURES, 0.0) | {"bias": -3.0, "text_logit": 2.0, "silence_s": 4.0}
    return EndOfTurnPredictor(tuple(named[f] for f in FEATURES), text)


# ----------------------------------------------------------------------------- the rule in the turn machine


class Driver:
    def __init__(self, rule: PredictorRule) -> None:
        self.taker = TurnTaker(TurnConfig(speculate_ms=96, rule=rule))
        self.t = 0

    def feed(self, prob: float, ms: int) -> list[tuple[Signal, int]]:
        out = []
        for _ in range(ms // MS_PER_W):
            out += [(tr.signal, tr.t_samples) for tr in self.taker.on_vad(prob, self.t, W)]
            self.t += W
        return out


def silence_until_confirmed(d: Driver, max_ms: int = 2000) -> float | None:
    start = d.t
    for _ in range(max_ms // MS_PER_W):
        for signal, t in d.feed(0.02, MS_PER_W):
            if signal is Signal.PAUSE_CONFIRMED:
                return (t - start) / 16
    return None


@pytest.mark.parametrize(
    ("transcript", "covers", "confirmed_ms"),
    [
        ("we went to the store", "pause", 32),  # finished words: the first silent window
        ("we went to the", "pause", 800),  # dangling words: only the fallback
        (None, "pause", 800),  # no transcript at all: the fallback
        ("we went to the store", "before", 800),  # words that miss the last stretch count as unknown
    ],
)
def test_the_predictor_rule_confirms_as_soon_as_the_words_allow_and_falls_back_otherwise(
    transcript: str | None, covers: str, confirmed_ms: float
) -> None:
    text = TextCompleteness({"bias": -1.0, "w1=store": 5.0, "w1=the": -5.0})
    rule = PredictorRule(threshold=0.9, max_silence_ms=800, predictor=hand_made(text))
    d = Driver(rule)
    d.feed(0.9, 960)
    speech_end = d.t
    if transcript is not None:
        d.taker.on_transcript(transcript, speech_end if covers == "pause" else speech_end - 320 * 16)
    assert silence_until_confirmed(d) == confirmed_ms
    assert d.taker.state is TurnState.RESPONDING


def test_a_new_turn_forgets_the_last_turns_words() -> None:
    text = TextCompleteness({"bias": -1.0, "w1=store": 5.0})
    d = Driver(PredictorRule(threshold=0.9, max_silence_ms=800, predictor=hand_made(text)))
    d.feed(0.9, 960)
    d.taker.on_transcript("we went to the store", d.t)
    assert silence_until_confirmed(d) == 32
    d.taker.reply_done(d.t)
    d.feed(0.9, 960)  # the next turn, no words yet
    assert silence_until_confirmed(d) == 800


def test_the_pause_context_carries_what_the_rule_sees() -> None:
    d = Driver(PredictorRule(threshold=1.0, max_silence_ms=5000, predictor=hand_made(TextCompleteness({}))))
    d.feed(0.9, 640)
    d.taker.on_transcript("hello there", d.t)
    d.feed(0.3, 64)  # below the silence threshold (0.35): a pause, with a bump in it
    d.feed(0.02, 96)
    seen = d.taker.pause_context(d.t)
    assert seen is not None
    assert seen.silence_ms == 160 and seen.transcript == "hello there"
    assert seen.pause_max_prob == pytest.approx(0.3) and seen.run_ms == 640


def test_rules_are_built_from_settings_including_the_predictor() -> None:
    rule = make_rule("predictor", 1200, threshold=0.8)
    assert isinstance(rule, PredictorRule)
    assert (rule.threshold, rule.max_silence_ms, rule.uses_prosody) == (0.8, 1200, True)
    assert rule.confirm_after_ms(PauseCue.unknown()) == 1200
    trained = make_rule("predictor", 1200)
    assert isinstance(trained, PredictorRule)
    assert trained.threshold == EndOfTurnPredictor.load().threshold  # the threshold training chose
    assert not FixedSilence(320).confirm_early(context(5000, "done"))
    with pytest.raises(ValueError, match="threshold"):
        PredictorRule(threshold=0.0)


# ----------------------------------------------------------------------------- training


@pytest.mark.slow
def test_the_training_command_rebuilds_loadable_weights_at_a_tiny_size(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "presence.endofturn.train", "--tiny", "--streams", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    fusion = json.loads((tmp_path / "fusion.json").read_text())
    assert fusion["stats"]["windows"] > 100 and 0 < fusion["stats"]["done_windows"] < fusion["stats"]["windows"]
    text = TextCompleteness.load(tmp_path / "text.json")
    predictor = EndOfTurnPredictor.load(tmp_path / "fusion.json", text)
    assert 0.0 < predictor.probability(context(320, "we went to the store")) < 1.0
