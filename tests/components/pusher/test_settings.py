"""The pusher's settings are validated once, when `PushSettings` is built (issue 15), and
`push_model` trusts a request built from them."""

from __future__ import annotations

import pytest

from tfrelay.components.pusher import push, settings


def test_settings_apply_the_components_defaults():
    built = settings.PushSettings.create("s3://bucket/models/penguins")

    assert built == settings.PushSettings(
        "s3://bucket/models/penguins", "penguins", 0, settings.VERSIONING_NEXT_INTEGER
    )
    assert settings.PushSettings.create("/srv/m", "hp", 3, "unix_timestamp").keep_last == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("",), "base_path is required"),
        (("ftp://host/m",), "unsupported scheme 'ftp'"),
        (("s3:///m",), "names no bucket"),
        (("s3://key:secret@bucket/m",), "carries credentials"),
        (("/srv/models/m/3",), "point it at the directory that holds the versions"),
        (("/srv/m", " "), "model_name must be a non-empty string"),
        (("/srv/m", None, -1), "keep_last must be a whole number >= 0"),
        (("/srv/m", None, True), "keep_last must be a whole number >= 0"),
        (("/srv/m", None, 0, "latest"), "versioning must be 'next_integer'"),
    ],
)
def test_an_invalid_setting_is_refused_with_what_to_do(arguments, message):
    with pytest.raises(ValueError, match=message):
        settings.PushSettings.create(*arguments)


def test_the_component_check_validates_only_what_is_known_at_construction():
    def known(value: object) -> bool:
        return value != "RUNTIME"

    assert settings.validate_known("/srv/m", None, 2, "next_integer", known) == (
        settings.PushSettings("/srv/m", "m", 2, "next_integer")
    )
    assert settings.validate_known("RUNTIME", None, 2, "RUNTIME", known) is None
    with pytest.raises(ValueError, match="keep_last"):
        settings.validate_known("RUNTIME", None, -1, "next_integer", known)


def test_a_request_is_validated_when_built_and_not_again_from_settings(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="keep_last"):
        push.PushRequest(str(tmp_path), str(tmp_path / "m"), "m", keep_last=-1)

    built = settings.PushSettings.create(str(tmp_path / "m"))
    calls = []
    monkeypatch.setattr(settings, "validate_base_path", lambda value: calls.append(value))
    request = push.PushRequest.from_settings(built, str(tmp_path), selection_reason="why")

    assert calls == []
    assert request.settings is built
    assert (request.base_path, request.model_name, request.selection_reason) == (
        str(tmp_path / "m"),
        "m",
        "why",
    )


def test_a_request_whose_fields_contradict_its_settings_is_refused(tmp_path):
    built = settings.PushSettings.create(str(tmp_path / "m"))

    with pytest.raises(ValueError, match="contradict"):
        push.PushRequest(str(tmp_path), str(tmp_path / "other"), "m", settings=built)


def test_a_request_without_a_model_name_is_named_after_its_base_path(tmp_path):
    request = push.PushRequest(str(tmp_path), str(tmp_path / "penguins"), None)

    assert request.model_name == "penguins" == request.settings.model_name
