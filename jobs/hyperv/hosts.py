"""The inventory file: which Hyper-V hosts exist, how to reach them, and their credentials by reference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

AuthMode = Literal["basic", "ntlm", "negotiate", "kerberos", "credssp"]


class InventoryError(ValueError):
    """The inventory file is missing, unreadable or invalid (the message names the file and the field)."""


URL_SHAPE = "https://HOST:5986/wsman (or http://HOST:5985/wsman)"
CREDENTIALS_ADVICE = ("put the user name in username: and the password in password_env: or password_file: "
                      "(a mounted secret), then remove them from the url")


def url_problem(url: str) -> str | None:
    """What is wrong with an inventory url, in words that never repeat it: a typo such as
    `https//svc:P@ss@host/wsman` would otherwise carry the password into logs and chat."""
    if "@" in url:  # userinfo, or what a typo left of it; WinRM urls never need an @
        return f"url must not contain credentials; {CREDENTIALS_ADVICE}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"url is not a valid address; write it as {URL_SHAPE}"
    if parts.scheme not in ("http", "https"):
        return f"url must start with https:// or http://; write it as {URL_SHAPE}"
    if not parts.hostname:
        return f"url has no host name; write it as {URL_SHAPE}"
    if port == 0:
        return "url port must be between 1 and 65535"
    return None


class HostConfig(BaseModel):
    """One Hyper-V host. The password is given inline (lab only), by environment variable, or by file."""

    # hide_input_in_errors: a validation error must never echo a value (url, password) back
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1)
    url: str
    fqdn: str | None = None
    site: str | None = None
    auth: AuthMode = "negotiate"
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    configuration: str | None = Field(default=None, description="JEA session configuration name")
    proxy: str | None = Field(default=None, description="HTTP proxy; environment proxies are ignored")

    @model_validator(mode="after")
    def _check(self) -> HostConfig:
        problem = url_problem(self.url)
        if problem is not None:
            raise ValueError(f"host {self.name}: {problem}")
        given = [x for x in (self.password, self.password_env, self.password_file) if x is not None]
        if len(given) > 1:
            raise ValueError(f"host {self.name}: give only one of password, password_env, password_file")
        return self

    @property
    def ssl(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    def secret(self) -> str | None:
        """The password, resolved now (env/file may change between calls, e.g. on rotation)."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise InventoryError(f"host {self.name}: environment variable {self.password_env} is not set")
            return value
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise InventoryError(f"host {self.name}: cannot read password_file {self.password_file}: "
                                     f"{exc.strerror}") from None
        return None


class Inventory(BaseModel):
    """All hosts in file order, plus the lab's control endpoint when the file was written by the lab."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    hosts: tuple[HostConfig, ...]
    lab_control_url: str | None = None

    @model_validator(mode="after")
    def _unique(self) -> Inventory:
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate host names: {', '.join(dupes)}")
        return self

    def host(self, name: str) -> HostConfig:
        for h in self.hosts:
            if h.name == name or (h.fqdn is not None and h.fqdn.lower() == name.lower()):
                return h
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def sites(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for h in self.hosts:
            out.setdefault(h.site or "", []).append(h.name)
        return out


def parse_inventory(data: Any, source: str = "<inventory>") -> Inventory:
    """Build an Inventory from parsed YAML; ``defaults:`` is merged under every host entry."""
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise InventoryError(f"{source}: expected a mapping with a 'hosts:' list")
    defaults = data.get("defaults") or {}
    hosts = [{**defaults, **h} if isinstance(h, dict) else h for h in data["hosts"]]
    lab = data.get("lab") or {}
    try:
        return Inventory(hosts=hosts, lab_control_url=lab.get("control_url"))
    except ValueError as exc:
        # pydantic's message lists fields and problems but never input values of SecretStr fields.
        raise InventoryError(f"{source}: {_short(exc)}") from None


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"inventory {p} is not valid YAML{_where(exc)}") from None
    return parse_inventory(data, str(p))


def _where(exc: yaml.YAMLError) -> str:
    """Line, column and the parser's problem, but not its quote of the line: that line may hold a password."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}" if problem else where


def _short(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors(include_input=False)
        )
    return str(exc)
