"""check-config blanks every secret the configuration holds, whatever a library's error text quotes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli.check_config import known_secrets, redact
from bot.settings import Settings

SECRETS = ["xoxb-pl4nted-bot", "pl4nted-signing", "Pl4nted-redis-pw", "Pl4nted-inline-pw", "Pl4nted-env-pw"]


def test_every_configured_secret_is_blanked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"hosts": [
        {"name": "hv-a1", "url": "http://127.0.0.1:1/wsman", "auth": "basic", "username": "u", "password": SECRETS[3]},
        {"name": "hv-a2", "url": "http://127.0.0.1:2/wsman", "username": "u", "password_env": "HVBOT_TEST_PW"},
        {"name": "hv-a3", "url": "http://127.0.0.1:3/wsman", "username": "u", "password_env": "HVBOT_TEST_UNSET"},
    ]}))
    monkeypatch.setenv("HVBOT_TEST_PW", SECRETS[4])
    monkeypatch.delenv("HVBOT_TEST_UNSET", raising=False)
    settings = Settings(slack_bot_token=SECRETS[0], slack_signing_secret=SECRETS[1],
                        redis_url=f"redis://:{SECRETS[2]}@127.0.0.1:1/0", inventory=inventory)
    line = "FAIL something: " + " / ".join(f"a library quoted {s}" for s in SECRETS)
    shown = redact(line, known_secrets(settings))
    assert not [s for s in SECRETS if s in shown] and shown.count("***") == len(SECRETS)


def test_an_unreadable_inventory_still_blanks_the_settings_secrets(tmp_path: Path) -> None:
    settings = Settings(slack_bot_token=SECRETS[0], inventory=tmp_path / "missing.yml")
    assert redact(f"token {SECRETS[0]}", known_secrets(settings)) == "token ***"
