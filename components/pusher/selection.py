"""Which model the BucketPusher pushes, and why: blessing, fallback and their wording (issue 15).

Pure: no storage, no TFX. The executor reads the artifacts' properties into `Candidate`s and
`select` decides; the sentences it returns end up in the push record (`selection_reason`) and
the PushedModel (`tfrelay_push_reason`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Which of the pusher's inputs a version holds (the push record's "selected_input").
SELECTED_MODEL = "model"
SELECTED_FALLBACK = "fallback_model"

_UNTOUCHED = ". The bucket was not touched; the serving version stays."


def parse_metrics(text: str | None) -> dict:
    """Parses a blessing's metrics property (a JSON object); anything else gives {}.

    Args:
      text: the property's value ("" when absent).

    Returns:
      {metric name: value}.
    """
    if not text:
        return {}
    try:
        metrics = json.loads(text)
    except ValueError:
        logger.warning("Ignoring metrics that are not JSON: %.200s", text)
        return {}
    if not isinstance(metrics, dict):
        logger.warning("Ignoring metrics that are not a JSON object: %.200s", text)
        return {}
    return metrics


def parse_failed_checks(text: str | None) -> list[str]:
    """Parses a blessing's failed-checks property (a JSON list of strings).

    Args:
      text: the property's value ("" when absent).

    Returns:
      The reasons; a value that is not a JSON list is kept as one reason.
    """
    if not text:
        return []
    try:
        checks = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(checks, list):
        return [str(check) for check in checks]
    return [str(checks)]


def not_blessed_reason(blessing_uri: str, failed_checks: list[str]) -> str:
    """The PushedModel's reason when the model was not blessed.

    Args:
      blessing_uri: the ModelBlessing artifact's URI.
      failed_checks: why the validator refused it (may be empty).

    Returns:
      One sentence, naming the failed checks when known.
    """
    reason = f"not pushed: the model was not blessed (ModelBlessing {blessing_uri})"
    if failed_checks:
        reason += "; failed checks: " + "; ".join(failed_checks)
    return reason + _UNTOUCHED


def selection_reason(blessing_uri: str | None) -> str:
    """Why `model` itself is pushed (it is blessed, or no blessing was wired).

    Args:
      blessing_uri: the ModelBlessing artifact's URI, or None when none was wired.

    Returns:
      One sentence.
    """
    if blessing_uri is None:
        return "model pushed without a blessing: no model_blessing was wired."
    return f"model pushed: it was blessed (ModelBlessing {blessing_uri})."


def fallback_reason(
    model_uri: str, blessing_uri: str, failed_checks: list[str], fallback_uri: str
) -> str:
    """Why the fallback model is pushed instead of `model`.

    Args:
      model_uri: the model that was not blessed.
      blessing_uri: its ModelBlessing's URI.
      failed_checks: why it was not blessed (may be empty).
      fallback_uri: the fallback Model artifact's URI.

    Returns:
      One sentence naming both models and the failed checks.
    """
    reason = (
        f"fallback_model {fallback_uri} pushed instead of model {model_uri}, which was not "
        f"blessed (ModelBlessing {blessing_uri})"
    )
    if failed_checks:
        reason += "; failed checks: " + "; ".join(failed_checks)
    return reason + "."


def fallback_not_blessed_reason(
    blessing_uri: str,
    failed_checks: list[str],
    fallback_blessing_uri: str,
    fallback_failed_checks: list[str],
) -> str:
    """The PushedModel's reason when neither the model nor its fallback was blessed.

    Args:
      blessing_uri: the model's ModelBlessing URI.
      failed_checks: why the model was not blessed.
      fallback_blessing_uri: the fallback's ModelBlessing URI.
      fallback_failed_checks: why the fallback was not blessed.

    Returns:
      One sentence naming both blessings and their failed checks.
    """
    reason = not_blessed_reason(blessing_uri, failed_checks).removesuffix(_UNTOUCHED)
    reason += f"; the fallback model was not blessed either (ModelBlessing {fallback_blessing_uri})"
    if fallback_failed_checks:
        reason += "; its failed checks: " + "; ".join(fallback_failed_checks)
    return reason + _UNTOUCHED


@dataclass(frozen=True)
class Blessing:
    """A ModelBlessing, as far as selection needs it.

    Attributes:
      uri: the artifact's URI.
      blessed: its `blessed` property.
      failed_checks: why not, when not (`parse_failed_checks`).
      metrics: the validator's metrics (`parse_metrics`).
    """

    uri: str
    blessed: bool
    failed_checks: tuple[str, ...] = ()
    metrics: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One of the pusher's input models.

    Attributes:
      uri: the Model artifact's URI.
      blessing: its blessing, or None when none is wired.
    """

    uri: str
    blessing: Blessing | None = None


@dataclass(frozen=True)
class Selection:
    """What `select` decided.

    Attributes:
      chosen: the model to push, or None when nothing is pushed.
      selected_input: SELECTED_MODEL or SELECTED_FALLBACK ("" when nothing is pushed).
      reason: why, in one sentence (the push record's `selection_reason`, or the PushedModel's
        reason when nothing is pushed).
    """

    chosen: Candidate | None
    selected_input: str
    reason: str

    @property
    def push(self) -> bool:
        return self.chosen is not None

    @property
    def blessed(self) -> bool | None:
        """The push record's `blessed`: True when a blessing was consulted, None when none was."""
        if self.chosen is None:
            return None
        return True if self.chosen.blessing is not None else None

    @property
    def metrics(self) -> dict:
        """The chosen model's validator metrics ({} without a blessing)."""
        if self.chosen is None or self.chosen.blessing is None:
            return {}
        return dict(self.chosen.blessing.metrics)


def select(model: Candidate, fallback: Candidate | None = None) -> Selection:
    """Decides which model to push, as TFX's Pusher does, plus tfrelay's fallback.

    `model` is pushed when it is blessed or has no blessing wired (TFX's Pusher pushes an
    unvalidated model, with a warning); otherwise `fallback` (wired and switched on, else pass
    None) when its own blessing, if wired, is blessed; otherwise nothing.

    Args:
      model: the `model` input.
      fallback: the `fallback_model` input when it is wired and `fallback` is on, else None.

    Returns:
      The decision and its reason.
    """
    blessing = model.blessing
    if blessing is None or blessing.blessed:
        return Selection(
            model, SELECTED_MODEL, selection_reason(blessing.uri if blessing else None)
        )
    failed = list(blessing.failed_checks)
    if fallback is None:
        return Selection(None, "", not_blessed_reason(blessing.uri, failed))
    fallback_blessing = fallback.blessing
    if fallback_blessing is not None and not fallback_blessing.blessed:
        reason = fallback_not_blessed_reason(
            blessing.uri, failed, fallback_blessing.uri, list(fallback_blessing.failed_checks)
        )
        return Selection(None, "", reason)
    return Selection(
        fallback, SELECTED_FALLBACK, fallback_reason(model.uri, blessing.uri, failed, fallback.uri)
    )
