"""Settings: environment, *_FILE secrets, ID lists, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings

ENV = ("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN_FILE", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL",
       "REDIS_URL", "HVBOT_OPERATORS", "HVBOT_VIEWERS", "HVBOT_APPROVERS", "HVBOT_ALLOWED_CHANNELS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_file_secret_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "bot"
    secret.write_text("xoxb-from-file\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(secret))
    assert Settings().secret("slack_bot_token") == "xoxb-from-file"
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    assert Settings().secret("slack_bot_token") == "xoxb-from-env"


def test_secret_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    settings = Settings()
    assert "xoxb-very-secret" not in repr(settings) and "xoxb-very-secret" not in str(settings.model_dump())


def test_unreadable_secret_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="SLACK_BOT_TOKEN_FILE points to an unreadable file"):
        Settings()


def test_role_lists_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVBOT_OPERATORS", "U01, S02;W03")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    settings = Settings()
    assert settings.operators == ["U01", "S02", "W03"] and settings.viewers == []
    assert settings.api_base_url() == "http://127.0.0.1:9/api/"
    monkeypatch.setenv("HVBOT_APPROVERS", "@oncall")
    with pytest.raises(ValidationError, match="is not a Slack ID"):
        Settings()
