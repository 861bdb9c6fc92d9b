"""Inventory/settings loading and the secret-free error texts."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import yaml

from jobs.hyperv.commands import single
from jobs.hyperv.errors import AuthFailed, ErrorDetail, HostTimeout, HostUnreachable, PowerShellError, WSManFault
from jobs.hyperv.hosts import InventoryError, load_inventory, parse_inventory
from jobs.hyperv.session import HostSession
from jobs.hyperv.settings import JobSettings

SECRET = "s3cr3t-Pa55-word"


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_lab_format_with_defaults_and_credential_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET + "\n")
    monkeypatch.setenv("HV_PW", SECRET)
    path = _write(tmp_path, {
        "defaults": {"auth": "kerberos", "username": "svc"},
        "hosts": [
            {"name": "hv-a1", "fqdn": "hv-a1.lab.local", "site": "site-a", "url": "http://127.0.0.1:1/wsman",
             "auth": "basic", "username": "lab-admin", "password": SECRET},
            {"name": "hv-b1", "site": "site-b", "url": "https://hv-b1:5986/wsman", "password_env": "HV_PW",
             "configuration": "HvBot"},
            {"name": "hv-b2", "site": "site-b", "url": "https://hv-b2:5986/wsman", "password_file": str(pw_file),
             "ca_file": "/etc/ca.pem"},
        ],
        "lab": {"control_url": "http://127.0.0.1:9/control"},
    })
    inv = load_inventory(path)
    assert inv.names == ["hv-a1", "hv-b1", "hv-b2"]
    assert inv.host("HV-A1.lab.local").name == "hv-a1"
    assert [h.auth for h in inv.hosts] == ["basic", "kerberos", "kerberos"]
    assert all(h.secret() == SECRET for h in inv.hosts)
    assert inv.hosts[0].verify_tls and inv.hosts[1].configuration == "HvBot"
    assert inv.sites() == {"site-a": ["hv-a1"], "site-b": ["hv-b1", "hv-b2"]}
    assert inv.lab_control_url == "http://127.0.0.1:9/control"
    assert SECRET not in repr(inv) and SECRET not in str(inv)


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVBOT_INVENTORY", str(tmp_path / "inv.yaml"))
    monkeypatch.setenv("HVBOT_DEADLINE_S", "2.5")
    s = JobSettings()
    assert s.inventory == tmp_path / "inv.yaml" and s.deadline_s == 2.5
    monkeypatch.delenv("HVBOT_DEADLINE_S")
    assert JobSettings().deadline_s == 10.0


@pytest.mark.parametrize("data, needle", [
    ({"hosts": [{"name": "a", "url": "ftp://x"}]}, "url must start with https://"),
    ({"hosts": [{"name": "a", "url": f"http://u:{SECRET}@h/wsman"}]}, "must not contain credentials"),
    ({"hosts": [{"name": "a", "url": "http://h/wsman", "auth": "digest", "password": SECRET}]}, "auth"),
    ({"hosts": [{"name": "a", "url": "http://h/w"}, {"name": "a", "url": "http://h/w"}]}, "duplicate"),
    ({"nohosts": []}, "hosts"),
])
def test_invalid_inventories_fail_clearly_without_secrets(data: object, needle: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(data)
    assert needle in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("url, needle", [
    (f"https//svc:{SECRET}@hv-a1.lab.local/wsman", "must not contain credentials"),  # the typo of the report
    (f"https://svc:{SECRET}@hv-a1.lab.local:5986/wsman", "must not contain credentials"),
    (f"http:/svc:{SECRET}@hv-a1/wsman", "must not contain credentials"),
    (f"svc@{SECRET}", "must not contain credentials"),
    (f"https://hv-a1:{SECRET}/wsman", "not a valid address"),  # a port that is not a number
    (f"hv-a1/{SECRET}", "must start with https:// or http://"),
    (f"https:///{SECRET}", "has no host name"),
    (f"https://[{SECRET}/wsman", "not a valid address"),
])
def test_bad_urls_name_the_host_and_the_fix_but_never_echo_the_url(url: str, needle: str, tmp_path: Path) -> None:
    data = {"hosts": [{"name": "hv-ok", "url": "https://hv-ok:5986/wsman"},
                      {"name": "hv-typo", "url": url, "username": "svc", "password_env": "HV_PW"}]}
    with pytest.raises(InventoryError) as info:
        load_inventory(_write(tmp_path, data))
    text = str(info.value)
    assert needle in text and "host hv-typo" in text and "hv-ok" not in text
    assert SECRET not in text and url not in text and SECRET not in repr(info.value)
    if "credentials" in needle:
        assert "password_env" in text and "password_file" in text  # what to do instead


def test_a_model_built_directly_does_not_echo_its_input() -> None:
    from pydantic import ValidationError

    from jobs.hyperv.hosts import HostConfig

    with pytest.raises(ValidationError) as info:
        HostConfig(name="hv-typo", url=f"https//svc:{SECRET}@host/wsman")
    assert SECRET not in str(info.value) and "hv-typo" in str(info.value)


def test_yaml_errors_point_at_the_line_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"hosts:\n  - name: hv-a1\n    password: {SECRET}: oops\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert "line 3" in str(info.value) and SECRET not in str(info.value)


def test_missing_env_password_is_named() -> None:
    inv = parse_inventory({"hosts": [{"name": "a", "url": "http://h/w", "password_env": "HVBOT_NOPE_X"}]})
    with pytest.raises(InventoryError, match="HVBOT_NOPE_X"):
        inv.hosts[0].secret()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connection refused
    return port


def test_connection_refused_is_host_unreachable_and_secret_free(caplog: pytest.LogCaptureFixture) -> None:
    inv = parse_inventory({"hosts": [{"name": "hv-x", "url": f"http://127.0.0.1:{_closed_port()}/wsman",
                                      "auth": "basic", "username": "lab-admin", "password": SECRET}]})
    session = HostSession(inv.hosts[0], JobSettings(deadline_s=3))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HostUnreachable) as info:
        session.run(single("Get-VM"))
    err = info.value
    assert err.host == "hv-x" and "connection refused" in str(err) and err.kind == "unreachable"
    assert SECRET not in str(err) and SECRET not in repr(err) and SECRET not in caplog.text


def test_unresolvable_name_is_host_unreachable() -> None:
    inv = parse_inventory({"hosts": [{"name": "hv-y", "url": "http://hv-y.invalid:5985/wsman", "auth": "basic",
                                      "username": "u", "password": SECRET}]})
    with pytest.raises(HostUnreachable, match="resolve"):
        HostSession(inv.hosts[0], JobSettings(deadline_s=3)).run(single("Get-VM"))


def test_error_sentences_name_host_and_what_to_check() -> None:
    for err in (HostUnreachable.build("h1", "connection refused"), HostTimeout.build("h1", "Get-VM", 10),
                AuthFailed.build("h1", "basic", "bot"), WSManFault.build("h1", 2150858843, "The shell was not found"),
                PowerShellError.build("h1", "Get-VM", (ErrorDetail("VM 'x' not found", "VMNotFound,Get-VM",
                                                                   "ObjectNotFound"),))):
        text = str(err)
        assert text.startswith("h1: ") and "check" in text and text.count("\n") == 0
        assert err.to_dict() == {"host": "h1", "kind": err.kind, "message": text}
