"""Which model the pusher pushes and why (issue 15: pure, no TFX, no storage)."""

from __future__ import annotations

from tfrelay.components.pusher import selection
from tfrelay.components.pusher.selection import Blessing, Candidate


def test_a_blessed_model_is_pushed_with_its_metrics():
    model = Candidate("/m/1", Blessing("/b/1", True, metrics={"accuracy": 0.9}))

    chosen = selection.select(model)

    assert (chosen.chosen, chosen.selected_input) == (model, selection.SELECTED_MODEL)
    assert chosen.reason == "model pushed: it was blessed (ModelBlessing /b/1)."
    assert (chosen.blessed, chosen.metrics) == (True, {"accuracy": 0.9})


def test_a_model_without_a_blessing_is_pushed_as_tfx_does():
    chosen = selection.select(Candidate("/m/1"))

    assert chosen.push and chosen.blessed is None and chosen.metrics == {}
    assert chosen.reason == "model pushed without a blessing: no model_blessing was wired."


def test_a_model_that_is_not_blessed_is_not_pushed_and_the_reason_names_the_checks():
    chosen = selection.select(Candidate("/m/1", Blessing("/b/1", False, ("accuracy 0.6",))))

    assert not chosen.push and chosen.selected_input == ""
    assert chosen.reason == (
        "not pushed: the model was not blessed (ModelBlessing /b/1); failed checks: accuracy "
        "0.6. The bucket was not touched; the serving version stays."
    )


def test_the_fallback_is_pushed_when_the_model_is_not_blessed_and_it_is():
    fallback = Candidate("/trainer/1", Blessing("/v/1", True))

    chosen = selection.select(Candidate("/opt/1", Blessing("/b/1", False)), fallback)

    assert (chosen.chosen, chosen.selected_input) == (fallback, selection.SELECTED_FALLBACK)
    assert chosen.reason == (
        "fallback_model /trainer/1 pushed instead of model /opt/1, which was not blessed "
        "(ModelBlessing /b/1)."
    )


def test_nothing_is_pushed_when_neither_model_nor_fallback_is_blessed():
    chosen = selection.select(
        Candidate("/opt/1", Blessing("/b/1", False, ("size",))),
        Candidate("/trainer/1", Blessing("/v/1", False, ("accuracy",))),
    )

    assert not chosen.push
    assert chosen.reason == (
        "not pushed: the model was not blessed (ModelBlessing /b/1); failed checks: size; the "
        "fallback model was not blessed either (ModelBlessing /v/1); its failed checks: "
        "accuracy. The bucket was not touched; the serving version stays."
    )


def test_blessing_properties_that_are_not_the_expected_json_are_tolerated():
    assert selection.parse_metrics('{"accuracy": 0.9}') == {"accuracy": 0.9}
    assert selection.parse_metrics("[1]") == selection.parse_metrics("nope") == {}
    assert selection.parse_failed_checks('["a", "b"]') == ["a", "b"]
    assert selection.parse_failed_checks("plain text") == ["plain text"]
    assert selection.parse_failed_checks("") == []
