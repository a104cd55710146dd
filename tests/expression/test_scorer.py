"""The clause scorer against hand-labelled clauses and the rules it promises."""

from __future__ import annotations

import pytest

from presence.expression import EXPRESSIONS, score, split_clauses
from presence.expression.agreement import LABELLED, load, measure
from presence.expression.blendshapes import EXPRESSION_POSES, arkit_weights
from presence.protocol.hello import WEIGHT_SETS

# First run of the scorer on the set (rules written before it was measured): 89.4 %, kappa 0.88.
# After four general fixes that the misses suggested (regret words, "really" only when leading,
# emphatic words beat weak sentiment, "Do not …!" is no question): 97.6 %, kappa 0.97. The set
# is therefore a development set; these floors guard against regressions, not generalisation.
AGREEMENT_FLOOR = 0.9
KAPPA_FLOOR = 0.85


def test_the_labelled_set_is_balanced_enough_to_mean_something() -> None:
    rows = load(LABELLED)
    assert len(rows) >= 60
    for name in EXPRESSIONS:
        assert sum(label == name for label, _ in rows) >= 8, name


def test_agreement_with_the_labelled_set() -> None:
    result = measure(load(LABELLED))
    print(f"agreement {result.accuracy:.1%}, kappa {result.kappa:.2f}; misses {result.misses}")
    assert result.accuracy >= AGREEMENT_FLOOR
    assert result.kappa >= KAPPA_FLOOR


@pytest.mark.parametrize(
    ("clause", "name"),
    [
        ("Is the station far from here?", "curious"),
        ("how far is the station", "curious"),  # no question mark yet: the opener says so
        ("I am happy with it.", "happy"),
        ("I am not happy with it.", "concerned"),  # negation flips the lexicon's reading
        ("Wow, that was quick!", "surprised"),
        ("Hmm, let me see.", "thinking"),
        ("Never touch the rails!", "emphasis"),
        ("The shop opens at nine.", "neutral"),
        ("", "neutral"),
    ],
)
def test_rules(clause: str, name: str) -> None:
    assert score(clause).name == name


def test_an_exclamation_makes_the_same_sentiment_stronger() -> None:
    calm, loud = score("That is great."), score("That is great!")
    assert calm.name == loud.name == "happy"
    assert loud.intensity > calm.intensity
    assert all(0.0 <= score(c).intensity <= 1.0 for _, c in load(LABELLED))


def test_clauses_split_at_sentence_punctuation_and_keep_a_trailing_piece() -> None:
    assert split_clauses("Hello! How are you? Fine; thanks: bye") == [
        "Hello!",
        "How are you?",
        "Fine;",
        "thanks:",
        "bye",
    ]
    assert split_clauses("  ") == []


def test_every_expression_has_a_pose_of_real_arkit_names_without_speech_shapes() -> None:
    arkit = {
        *WEIGHT_SETS["arkit"][1],
        *(
            f"{s}{side}"
            for s in ("browOuterUp", "browDown", "eyeWide", "eyeSquint", "cheekSquint", "mouthFrown")
            for side in ("Left", "Right")
        ),
        "browInnerUp",
    }
    speech = {"jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRollLower", "mouthRollUpper", "tongueOut"}
    assert set(EXPRESSION_POSES) == set(EXPRESSIONS)
    for name in EXPRESSIONS:
        weights = arkit_weights(name, 1.0)
        assert set(weights) <= arkit - speech, name
        assert all(0 < w <= 1 for w in weights.values())
    assert arkit_weights("happy", 0.5)["mouthSmileLeft"] == pytest.approx(0.3)
    assert arkit_weights("neutral", 1.0) == {} and arkit_weights("no such face", 1.0) == {}
