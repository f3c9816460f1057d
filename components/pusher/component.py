"""The BucketPusher component: pushes a blessed model to a bucket for tfrelay's model server.

Wire it like TFX's Pusher, with the model server's base path instead of a PushDestination:

```python
pusher = BucketPusher(
    model=trainer.outputs["model"],
    model_blessing=evaluator.outputs["blessing"],
    base_path="s3://my-bucket/models/penguins",
    keep_last=3,
)
```

After an Optimizer, push the optimized model when it is blessed and fall back to the original
when it is not:

```python
pusher = BucketPusher(
    model=optimizer.outputs["optimized_model"],
    model_blessing=optimizer.outputs["blessing"],
    fallback_model=trainer.outputs["model"],
    fallback_model_blessing=validator.outputs["blessing"],
    fallback=True,
    base_path="s3://my-bucket/models/penguins",
)
```
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.placeholder import placeholder as ph
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.system_executions import Deploy

from tfrelay.components.pusher import executor, push, settings

# The keys live in keys.py (issue 15); imported by name so `component.MODEL_KEY` keeps working.
from tfrelay.components.pusher.keys import (
    BASE_PATH_KEY,
    FALLBACK_KEY,
    FALLBACK_MODEL_BLESSING_KEY,
    FALLBACK_MODEL_KEY,
    KEEP_LAST_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    MODEL_NAME_KEY,
    PUSHED_MODEL_KEY,
    VERSIONING_KEY,
)

VERSIONING_NEXT_INTEGER = push.VERSIONING_NEXT_INTEGER
VERSIONING_UNIX_TIMESTAMP = push.VERSIONING_UNIX_TIMESTAMP


class BucketPusherSpec(types.ComponentSpec):
    """BucketPusher component spec."""

    PARAMETERS = {
        BASE_PATH_KEY: ExecutionParameter(type=str),
        MODEL_NAME_KEY: ExecutionParameter(type=str, optional=True),
        KEEP_LAST_KEY: ExecutionParameter(type=int, optional=True),
        VERSIONING_KEY: ExecutionParameter(type=str, optional=True),
        FALLBACK_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        FALLBACK_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        FALLBACK_MODEL_BLESSING_KEY: ChannelParameter(
            type=standard_artifacts.ModelBlessing, optional=True
        ),
    }
    OUTPUTS = {
        PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }
    TYPE_ANNOTATION = Deploy


def _known_at_construction(value: object) -> bool:
    # Runtime parameters and placeholders are only resolved when the pipeline runs; the executor
    # validates them then.
    return not isinstance(value, (data_types.RuntimeParameter, ph.Placeholder))


def _validate_fallback(
    model_blessing: types.BaseChannel | None,
    fallback_model: types.BaseChannel | None,
    fallback_model_blessing: types.BaseChannel | None,
    fallback: object,
) -> None:
    """Checks that a fallback, when configured, can ever happen.

    Raises:
      ValueError: a fallback setting without what it needs; the message says what to wire.
    """
    example = (
        "e.g. BucketPusher(model=optimizer.outputs['optimized_model'], "
        "model_blessing=optimizer.outputs['blessing'], fallback_model=trainer.outputs['model'], "
        "fallback_model_blessing=validator.outputs['blessing'], fallback=True, ...)"
    )
    known = _known_at_construction(fallback)
    if known and not isinstance(fallback, (bool, int)):
        raise ValueError(f"fallback must be True or False, got {fallback!r}.")
    if fallback_model is None:
        if fallback_model_blessing is not None:
            raise ValueError(
                "fallback_model_blessing is set but fallback_model is not: wire the model it "
                f"blesses as fallback_model, {example}."
            )
        if not known or fallback:
            raise ValueError(
                "fallback=True needs fallback_model, the model to push when `model` is not "
                f"blessed, {example}."
            )
        return
    if model_blessing is None:
        raise ValueError(
            "fallback_model is only pushed when model_blessing says `model` is not blessed, and "
            f"no model_blessing is wired (so `model` would always be pushed): wire it, {example}."
        )
    if known and not fallback:
        raise ValueError(
            "fallback_model is wired but fallback=False, so it would never be pushed: pass "
            "fallback=True (or a RuntimeParameter to decide per run), or drop fallback_model."
        )


class BucketPusher(base_component.BaseComponent):
    """Pushes a blessed model as a new integer version under a model server's base path.

    The version directory is published per tfrelay's bucket contract (every other file first,
    then the push record `assets.extra/tfrelay_push.json`, then `saved_model.pb` or
    `model.tflite` last), so a polling server never loads a half-written version. A model whose
    `model_blessing` is present but not blessed is not pushed; without a `model_blessing` the model
    is pushed with a warning, as TFX's Pusher does. Pushing the model that the newest version
    already holds does nothing, and a retry of an interrupted push resumes the same version.

    With `fallback_model` and `fallback=True`, a `model` that is not blessed is replaced by
    `fallback_model` (if its own `fallback_model_blessing`, when wired, is blessed): e.g. the
    Optimizer's model when it kept its accuracy, else the Trainer's original. The push record and
    the PushedModel say which was pushed and why.

    Credentials are never parameters: the executor reads them from its environment, like the
    model server does (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION, plus S3_ENDPOINT
    and S3_USE_HTTPS for MinIO-style endpoints, for s3://; GOOGLE_APPLICATION_CREDENTIALS for
    gs://).

    Component `outputs` contains:
      - `pushed_model`: a PushedModel with the custom properties TFX's Pusher writes (`pushed`
        1/0, `pushed_destination` = the version directory's URL, `pushed_version`), plus the model
        name, the push reason, which input was pushed (`tfrelay_pushed_input`: "model" or
        "fallback_model") and its URI; its URI holds a copy of the push record.
    """

    SPEC_CLASS = BucketPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel | None = None,
        model_blessing: types.BaseChannel | None = None,
        base_path: str | data_types.RuntimeParameter | None = None,
        model_name: str | data_types.RuntimeParameter | None = None,
        keep_last: int | data_types.RuntimeParameter = 0,
        versioning: str | data_types.RuntimeParameter = VERSIONING_NEXT_INTEGER,
        fallback_model: types.BaseChannel | None = None,
        fallback_model_blessing: types.BaseChannel | None = None,
        fallback: bool | data_types.RuntimeParameter = False,
    ) -> None:
        """Constructs a BucketPusher.

        Args:
          model: a channel of `Model`, usually `trainer.outputs["model"]`. The SavedModel is
            taken from its `Format-Serving` directory (or its root if that is absent).
          model_blessing: an optional channel of `ModelBlessing`, usually from an evaluator or
            validator; the model is pushed only if its `blessed` property is 1.
          base_path: the model's base path, the directory that holds the integer version
            directories, exactly what the model server's --model_base_path points to: e.g.
            `s3://my-bucket/models/penguins`, `gs://my-bucket/models/penguins` or a local path.
          model_name: the name recorded in the push record and the PushedModel; defaults to the
            last path component of `base_path`.
          keep_last: 0 keeps every version; N > 0 deletes the oldest published versions beyond
            the newest N after each successful push.
          versioning: "next_integer" (one more than the highest version directory present) or
            "unix_timestamp" (seconds since the epoch, as TFX's Pusher; bumped above every
            existing version if needed).
          fallback_model: an optional channel of `Model` pushed instead of `model` when `model`
            is not blessed and `fallback` is on, e.g. `trainer.outputs["model"]` when `model` is
            the Optimizer's output.
          fallback_model_blessing: an optional blessing of `fallback_model` (e.g. the
            Validator's); when wired, the fallback is pushed only if it is blessed.
          fallback: push `fallback_model` when `model` is not blessed (needs `fallback_model`
            and `model_blessing`).

        Raises:
          ValueError: a missing model channel or an invalid parameter; the message says how to
            fix it.
        """
        if model is None:
            raise ValueError(
                "BucketPusher needs a model channel: pass model=trainer.outputs['model'] (a "
                "channel of standard_artifacts.Model)."
            )
        # The values known now are checked now; runtime parameters when the executor runs.
        settings.validate_known(
            base_path, model_name, keep_last, versioning, _known_at_construction
        )
        _validate_fallback(model_blessing, fallback_model, fallback_model_blessing, fallback)
        fallback_args = {}
        if fallback_model is not None:
            # Only then: a pusher without a fallback keeps exactly the spec it always had.
            fallback_args = {
                FALLBACK_MODEL_KEY: fallback_model,
                FALLBACK_MODEL_BLESSING_KEY: fallback_model_blessing,
                FALLBACK_KEY: int(fallback) if _known_at_construction(fallback) else fallback,
            }
        spec = BucketPusherSpec(
            model=model,
            model_blessing=model_blessing,
            base_path=base_path,
            model_name=model_name,
            keep_last=keep_last,
            versioning=versioning,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            **fallback_args,
        )
        super().__init__(spec=spec)
