"""The approval key is configuration, not a constant: `check-config` reports it missing, the store refuses to
sign without it, and a configured HVBOT_APPROVAL_SECRET (or the signing secret) is accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from bot.delivery.cards import approval_store
from bot.settings import ApprovalSecretMissing, Settings
from tests.support.fixtures_redis import test_redis_url
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET

SECRET_NAMES = ("SLACK_SIGNING_SECRET", "HVBOT_APPROVAL_SECRET", "SLACK_APP_TOKEN")


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hvbot")
    base = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES and not k.endswith("_FILE")}
    return subprocess.run([str(exe), "check-config"], capture_output=True, text=True, timeout=120,
                          env={**base, **env}, cwd="/")  # no .env from the checkout


def _env(fake: FakeSlack, inventory: Path) -> dict[str, str]:
    # Socket Mode needs no signing secret, so nothing signs approvals unless HVBOT_APPROVAL_SECRET is set
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1-test", "SLACK_API_URL": fake.api_url,
            "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(inventory)}


def test_check_config_reports_a_missing_approval_secret(fake_slack: FakeSlack, lab_inventory_path: Path) -> None:
    result = _check(_env(fake_slack, lab_inventory_path))
    assert result.returncode == 1, result.stdout
    line = next(x for x in result.stdout.splitlines() if "approval secret" in x)
    assert line.startswith("FAIL approval secret: no approval secret: set HVBOT_APPROVAL_SECRET"), line


def test_check_config_accepts_a_configured_approval_secret(fake_slack: FakeSlack, lab_inventory_path: Path) -> None:
    secret = "a-long-enough-approval-key-0123"
    result = _check(_env(fake_slack, lab_inventory_path) | {"HVBOT_APPROVAL_SECRET": secret})
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "ok   approval secret: failover approval buttons are signed with HVBOT_APPROVAL_SECRET" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_store_refuses_to_sign_without_a_secret(redis_conn: redis.Redis) -> None:
    with pytest.raises(ApprovalSecretMissing):
        approval_store(Settings(slack_signing_secret=None, approval_secret=None, _env_file=None), redis_conn)
    store = approval_store(Settings(slack_signing_secret=SIGNING_SECRET, _env_file=None), redis_conn)
    approval = store.request("failover", {"vm": "fw01"}, "U1", "C1")
    other = approval_store(Settings(slack_signing_secret=None, approval_secret="another-key-0123456789",
                                    _env_file=None), redis_conn)
    assert other.digest(approval.id, approval.kind, approval.params) != approval.digest  # the key matters
