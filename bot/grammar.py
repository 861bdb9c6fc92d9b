"""The `/hyperv` grammar: text -> typed Command. Help, usage lines and suggestions are generated from GRAMMAR."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jobs.backup.export_progress import ExportPathError, validate_export_path
from jobs.durations import parse_duration

MAX_TEXT = 1000
MAX_TARGETS = 20
# Names, IPs (v4/v6), prefixes (10.0.4. or 10.0.4.0/24) and wildcard filters. Everything else is refused early.
# Quoted VM names may contain inner spaces ("web 01"); commands are sent as parameters, never as script text.
_TOKEN = re.compile(r"^[A-Za-z0-9_*](?:[A-Za-z0-9._:/* -]{0,98}[A-Za-z0-9._:/*-])?$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SLACK_LINK = re.compile(r"<(?:mailto:|https?://)?[^|>]*\|([^>]*)>")
_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "})

VIEWER, OPERATOR, APPROVER = "viewer", "operator", "approver"
FAILOVER_KINDS = ("planned", "unplanned", "test", "cancel", "complete")
BACKUP_VERBS = ("backup-check", "backup-window", "checkpoint", "export")
MAX_WINDOW = timedelta(hours=12)  # as WindowConfig.max_duration_s (jobs/backup/window.py): long pauses force a resync
MAX_SILENCE = timedelta(days=7)


@dataclass(frozen=True)
class Verb:
    name: str
    args: str  # usage shape, e.g. "VM" or "[VM|IP|PREFIX ...]"
    summary: str
    role: str
    positional: str  # "none" | "optional" | "one" | "many"
    options: tuple[str, ...] = ()  # accepted --options taking a value
    lookup: bool = False  # runs on a worker against the fleet; answered to the requester unless --here
    flags: tuple[str, ...] = ()  # accepted --options without a value (kept in Command.extra as "1")

    def usage(self) -> str:
        parts = [f"/hyperv {self.name}", self.args] + [f"[--{o} {o.upper()}]" for o in self.options]
        parts += [f"[--{f}]" for f in self.flags]
        if self.lookup:
            parts.append("[--here]")
        return " ".join(p for p in parts if p)


# Recovery plans: the list (bot/listeners/recovery.py); `plan NAME [failover ...]` is in RECOVERY_GRAMMAR below.
RECOVERY_PLAN_VERBS: tuple[Verb, ...] = (
    Verb("plans", "", "recovery plans and their VMs' replication health", VIEWER, "none"),
)

GRAMMAR: tuple[Verb, ...] = (
    Verb("help", "[COMMAND]", "show this help, or one command's usage", VIEWER, "optional"),
    Verb("ips", "[VM|IP|PREFIX ...]", "IP addresses of VMs; find a VM by IP or prefix", VIEWER, "many", ("host",), True),
    Verb("vms", "[FILTER]", "list VMs (FILTER may use * wildcards)", VIEWER, "optional", ("host",), True),
    Verb("memory", "[VM]", "dynamic memory: assigned, demand, pressure; --at-max: only VMs whose assigned memory "
         "has reached their dynamic maximum, worst first", VIEWER, "optional", ("host",), True, ("at-max",)),
    Verb("teaming", "[VM [on|off]]", "NIC teaming setting of VM network adapters; on|off changes it (operator)",
         VIEWER, "many", ("host",), True),
    Verb("checkpoints", "VM", "checkpoints of one VM", VIEWER, "one", ("host",), True),
    Verb("jobs", "", "running and recent jobs", VIEWER, "none"),
    Verb("cancel", "JOB", "cancel a queued or running job (your own, or any as operator)", VIEWER, "one"),
    Verb("audit", "[N]", "the last N audit entries (default 20, max 100)", APPROVER, "optional"),
    Verb("failover",
         "VM [planned|unplanned|test|cancel|complete] | --site SITE|--host HOST [planned|unplanned|test|complete|"
         "cancel|reverse]",
         "preview a Replica failover of a VM, or of every replicated VM of a site or host, then request one approval "
         "(default: planned)", OPERATOR, "many", ("point", "host", "site")),
    Verb("reverse", "VM", "preview reverse replication after a failover, then request approval", OPERATOR, "one",
         ("host",)),
    Verb("points", "VM", "recovery points of a replicated VM", VIEWER, "one", ("host",), True),
    Verb("backup-check", "VM", "can the Replica VM be backed up now? (retried while transient)", VIEWER, "one"),
    Verb("backup-window", "VM DURATION|end", "pause replication for a backup (like 2h), or end the window now",
         OPERATOR, "many", ("at",)),
    Verb("checkpoint", "VM [NAME]", "create a checkpoint (Checkpoint-VM)", OPERATOR, "many"),
    Verb("export", "VM CHECKPOINT PATH", "export a checkpoint to D:\\Exports or \\\\server\\share (progress, "
         "cancel)", OPERATOR, "many"),
    Verb("replication", "[VM|HOST|--all] [--fresh]",
         "replica health from the last sweep, with a chart for a VM (24 h), a HOST or --all (7 days); --fresh: sweep "
         "now too", VIEWER, "optional"),
    Verb("silence", "VM|HOST DURATION", "mute replica alerts of a VM or host for DURATION (30m, 2h, 1d)", OPERATOR,
         "many"),
    *RECOVERY_PLAN_VERBS,
    # failover drills (test failover, heartbeat, cleanup, report); --every schedules instead of running now
    Verb("drill", "PLAN|VM", "failover drill: test failover, heartbeat check, cleanup and a report; "
         "--every 30d [--at \"Sun 03:00\"] schedules it, --every off stops the schedule", OPERATOR, "one",
         ("every", "at", "host")),
)

# --- site, host and plan failover (recovery): `failover --site|--host` and `plan NAME failover` -----------------
SCOPE_FAILOVER_KINDS = ("planned", "unplanned", "test")
# Follow-ups of a run for its whole scope (the run card's Complete / Cancel / Reverse all buttons send these)
SCOPE_FOLLOW_UP_KINDS = ("complete", "cancel", "reverse")
SCOPE_KINDS = SCOPE_FAILOVER_KINDS + SCOPE_FOLLOW_UP_KINDS
RECOVERY_GRAMMAR: tuple[Verb, ...] = (
    Verb("plan", "NAME [failover [planned|unplanned|test|complete|cancel|reverse]]", "one recovery plan: groups in boot order, VMs, replica "
         "hosts, health; `failover` previews failing over all its VMs in group order, then requests one approval "
         "(operator)", VIEWER, "many"),
)
GRAMMAR = GRAMMAR + RECOVERY_GRAMMAR
# --- end of recovery grammar --------------------------------------------------------------------------------------

VERBS: dict[str, Verb] = {v.name: v for v in GRAMMAR}


class CommandError(ValueError):
    """A clear, user-facing reason why the text is not a command; `usage` is the line to show with it."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def text(self) -> str:
        return f"{self.message}\nUsage: `{self.usage}`" if self.usage else self.message


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...] = ()
    host: str | None = None
    here: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> Verb:
        return VERBS[self.verb]

    @property
    def role(self) -> str:
        """The role this exact command needs: changing teaming is an operator's, looking at it a viewer's."""
        if self.verb == "teaming" and len(self.args) == 2:
            return OPERATOR
        if self.verb == "plan" and len(self.args) >= 2:  # `plan NAME failover ...` acts; `plan NAME` only shows
            return OPERATOR
        return self.spec.role

    def canonical(self) -> str:
        """The command as hvbot understood it (what the audit log and messages show)."""
        parts = [self.verb, *(_quote(a) for a in self.args)]
        if self.host:
            parts += ["--host", _quote(self.host)]
        if "site" in self.extra:
            parts += ["--site", _quote(self.extra["site"])]
        parts += [f"--{f}" for f in self.spec.flags if f in self.extra]
        if self.here:
            parts.append("--here")
        return " ".join(parts)


def _quote(token: str) -> str:
    return token if _TOKEN.match(token) else shlex.quote(token)


def suggest(word: str, choices: list[str]) -> str | None:
    match = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return match[0] if match else None


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_TEXT:
        raise CommandError(f"That command is too long ({len(text)} characters; the limit is {MAX_TEXT}).")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        raise CommandError("That command contains control characters; please type it again as plain text.")
    cleaned = _SLACK_LINK.sub(r"\1", text.translate(_QUOTES))  # Slack auto-links host names: keep the label
    try:
        lexer = shlex.shlex(cleaned, posix=True)  # shlex.split, except that \ is a plain character:
        lexer.whitespace_split, lexer.commenters, lexer.escape = True, "", ""  # Windows paths (export PATH)
        return list(lexer)
    except ValueError:
        raise CommandError("Unbalanced quotes in the command; close every \" or '.") from None


def parse(text: str) -> Command:
    """Parse the text after `/hyperv`. Raises CommandError with a clear message (and usage) when it is not valid."""
    words = tokenize(text or "")
    if not words:
        return Command("help")
    name, rest = words[0].lower(), words[1:]
    verb = VERBS.get(name)
    if verb is None:
        hint = suggest(name, list(VERBS))
        shown = name if len(name) <= 30 else name[:30] + "…"
        did_you_mean = f" Did you mean `{hint}`?" if hint else ""
        raise CommandError(f"Unknown command `{shown}`.{did_you_mean} Try `/hyperv help`.")
    args, options, here = _split_options(verb, rest)
    _check_positionals(verb, args)
    host = options.pop("host", None)
    if host is not None and not _HOST.match(host):
        raise CommandError(f"`{host[:30]}` is not a host name (letters, digits, . - _).", verb.usage())
    command = Command(verb.name, tuple(args), host=host, here=here, extra=options)
    _check_recovery(command)
    return command


def _split_options(verb: Verb, words: list[str]) -> tuple[list[str], dict[str, str], bool]:
    args: list[str] = []
    options: dict[str, str] = {}
    here = False
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") or word.startswith("\u2014"):  # macOS turns -- into an em dash
            opt = word.lstrip("-\u2014").lower()
            if opt == "here" and verb.lookup:
                here = True
            elif opt in ("fresh", "all") and verb.name == "replication":  # flags: sweep now too / chart all hosts
                options[opt] = "1"
            elif opt in verb.flags:
                options[opt] = "1"
            elif opt in verb.options:
                if i + 1 >= len(words):
                    raise CommandError(f"`--{opt}` needs a value.", verb.usage())
                if opt in options:
                    raise CommandError(f"`--{opt}` is given twice.", verb.usage())
                options[opt] = words[i + 1]
                i += 1
            else:
                allowed = list(verb.options) + list(verb.flags) + (["here"] if verb.lookup else [])
                hint = suggest(opt, allowed)
                did = f" Did you mean `--{hint}`?" if hint else ""
                raise CommandError(f"`{verb.name}` has no option `--{opt[:30]}`.{did}", verb.usage())
        else:
            args.append(word)
        i += 1
    return args, options, here


def _check_positionals(verb: Verb, args: list[str]) -> None:
    count = len(args)
    if verb.name in BACKUP_VERBS:
        _check_backup_args(verb, args)
        return
    if verb.name == "teaming" and (count > 2 or (count == 2 and args[1].lower() not in ("on", "off"))):
        raise CommandError("`teaming` takes a VM, optionally followed by `on` or `off`.", verb.usage())
    if verb.name == "teaming" and count == 2 and "*" in args[0]:
        raise CommandError("Changing teaming names one VM exactly (no * wildcards).", verb.usage())
    if verb.positional == "none" and count:
        raise CommandError(f"`{verb.name}` takes no arguments.", verb.usage())
    if verb.positional == "optional" and count > 1:
        raise CommandError(f"`{verb.name}` takes at most one argument.", verb.usage())
    if verb.positional == "one" and count != 1:
        raise CommandError(f"`{verb.name}` needs exactly one {verb.args}.", verb.usage())
    if verb.positional == "many" and count > MAX_TARGETS:
        raise CommandError(f"At most {MAX_TARGETS} targets per request (got {count}).", verb.usage())
    for arg in args:
        _check_arg(verb, arg)


def _check_arg(verb: Verb, arg: str) -> None:
    if verb.name == "help":
        if arg.lower() not in VERBS:
            hint = suggest(arg, list(VERBS))
            raise CommandError(f"No command `{arg[:30]}`." + (f" Did you mean `{hint}`?" if hint else ""))
    elif verb.name == "audit":
        if not arg.isdigit() or not 1 <= int(arg) <= 100:
            raise CommandError("N must be a number from 1 to 100.", verb.usage())
    elif verb.name == "plan":
        _check_plan_arg(verb, arg)
    elif verb.name == "failover" and arg.lower() in FAILOVER_KINDS:
        return  # the kind word; its position and count are checked by bot.listeners.failover
    elif verb.name in ("failover", "reverse", "points"):
        exact_name(arg, "VM", verb.usage())
    elif verb.name == "drill" and "*" in arg:
        raise CommandError("A drill names one recovery plan or one VM exactly (no * wildcards).", verb.usage())
    elif verb.name == "teaming" and arg.lower() in ("on", "off"):
        return  # the switch word; its position is checked in _check_positionals
    elif verb.name == "cancel":
        if not _JOB_ID.match(arg):
            raise CommandError("That is not a job id (letters, digits, - and _ only).", verb.usage())
    else:
        _check_token(verb, arg, verb.args.strip("[]. ").split("|")[0].lower() or "argument")


def _check_token(verb: Verb, token: str, what: str) -> None:
    if not _TOKEN.match(token):
        shown = token if len(token) <= 30 else token[:30] + "…"
        raise CommandError(
            f"`{shown}` is not a valid {what}: use letters, digits and . - _ : / * (at most 100 characters).",
            verb.usage(),
        )


def exact_name(name: str, what: str = "VM", usage: str = "") -> str:
    """One VM (or checkpoint) named exactly, as commands that change something need it: the argument rule of typed
    commands, without * wildcards. Buttons use it too, so a crafted value can name no more than typed text."""
    shown = name if len(name) <= 30 else name[:30] + "…"
    if "*" in name:
        raise CommandError(f"`{shown}` must name one {what} exactly (no * wildcards).", usage)
    if not _TOKEN.match(name):
        raise CommandError(f"`{shown}` is not a valid {what}: use letters, digits and . - _ : / (at most 100 "
                           "characters).", usage)
    return name


def host_name(name: str) -> str:
    """A host name as `--host` accepts it (whether the inventory has it is the caller's check)."""
    if not _HOST.match(name):
        raise CommandError(f"`{name[:30]}` is not a host name (letters, digits, . - _).")
    return name


def job_id(text: str) -> str:
    """A job or message key as `cancel JOB` accepts it."""
    if not _JOB_ID.match(text):
        raise CommandError("That is not a job id (letters, digits, - and _ only).")
    return text


def help_text(topic: str | None = None) -> str:
    """Help generated from GRAMMAR; role names say who may run each command."""
    if topic:
        verb = VERBS[topic.lower()]
        return f"`{verb.usage()}`\n{verb.summary} (role: {verb.role})"
    lines = ["*hvbot* — Hyper-V from Slack. Commands:"]
    lines += [f"• `{v.usage()}` — {v.summary}" + ("" if v.role == VIEWER else f" ({v.role})") for v in GRAMMAR]
    lines.append("Lookups answer only you; add `--here` to post the answer in the channel.")
    return "\n".join(lines)


def parse_at(text: str, now: datetime) -> datetime:
    """``23:00`` (UTC, the next such time) or an ISO 8601 time (naive means UTC); must be in the future."""
    match = _CLOCK_TIME.match(text.strip())
    if match:
        when = now.astimezone(UTC).replace(hour=int(match[1]), minute=int(match[2]), second=0, microsecond=0)
        return when if when > now else when + timedelta(days=1)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"`{text[:40]}` is not a time such as 23:00 (UTC) or 2025-06-01T23:00+02:00") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"--at {text[:40]} is in the past")
    if when - now > timedelta(days=7):
        raise ValueError("--at may be at most 7 days ahead")
    return when


def _check_backup_args(verb: Verb, args: list[str]) -> None:
    """Positional shapes of the backup and export verbs: DURATION or `end`, and the export PATH (a Windows path
    with backslashes and spaces, checked by `validate_export_path`); other arguments keep the `_TOKEN` rule."""
    try:
        _backup_arg_counts(verb.name, args)
    except ValueError as err:
        raise CommandError(str(err), verb.usage()) from None
    for position, arg in enumerate(args):
        if "*" in arg:
            raise CommandError(f"`{verb.name}` names one VM or checkpoint exactly (no * wildcards)", verb.usage())
        if (verb.name, position) in (("export", 2), ("backup-window", 1)):
            continue
        _check_token(verb, arg, "checkpoint name" if position == 1 else "VM")


def _backup_arg_counts(name: str, args: list[str]) -> None:
    count = len(args)
    if name == "backup-check" and count != 1:
        raise ValueError("`backup-check` needs exactly one VM")
    if name == "backup-window":
        if count != 2:
            raise ValueError("`backup-window` needs a VM and a DURATION (like 2h) or `end`")
        if args[1].lower() != "end":
            parse_duration(args[1], MAX_WINDOW, "a backup window")
    if name == "checkpoint" and count not in (1, 2):
        raise ValueError("`checkpoint` needs a VM and optionally a checkpoint NAME")
    if name == "export":
        if count != 3:
            raise ValueError("`export` needs a VM, a CHECKPOINT and a PATH")
        try:
            validate_export_path(args[2])
        except ExportPathError as err:
            raise ValueError(f"Export path: {err}") from None


# --- site, host and plan failover (recovery) ------------------------------------------------------------------------

@dataclass(frozen=True)
class RecoveryScope:
    """What a site, host or plan failover covers: ``kind`` site|host|plan, its ``value``, the failover kind."""

    kind: str
    value: str
    failover: str


def recovery_scope(command: Command) -> RecoveryScope | None:
    """The scope of `failover --site SITE|--host HOST [KIND]` or `plan NAME failover [KIND]`; None for a single-VM
    failover (`failover VM ... [--host HOST]`) and for `plan NAME` on its own."""
    args = [a.lower() for a in command.args]
    if command.verb == "plan" and len(args) >= 2:
        return RecoveryScope("plan", command.args[0], args[2] if len(args) == 3 else "planned")
    if command.verb != "failover":
        return None
    kind = args[0] if args else "planned"
    if "site" in command.extra:
        return RecoveryScope("site", command.extra["site"], kind)
    if command.host and (not args or args[0] in (*FAILOVER_KINDS, *SCOPE_FOLLOW_UP_KINDS)):
        return RecoveryScope("host", command.host, kind)
    return None


def _check_plan_arg(verb: Verb, arg: str) -> None:
    if arg.lower() in ("failover", *SCOPE_KINDS):
        return  # positions checked by _check_recovery
    if "*" in arg:
        raise CommandError("A plan is named exactly (no * wildcards).", verb.usage())
    _check_token(verb, arg, "plan name")


def _check_recovery(command: Command) -> None:
    """Shapes of the scope forms: one optional kind word, and a site or host but not both (nor with --point)."""
    usage = VERBS[command.verb].usage()
    args = [a.lower() for a in command.args]
    if command.verb == "plan":
        if not args or len(args) > 3 or (len(args) >= 2 and args[1] != "failover"):
            raise CommandError("`plan` takes a plan NAME, optionally followed by `failover` and a kind.", usage)
        if len(args) == 3 and args[2] not in SCOPE_KINDS:
            raise CommandError(f"A plan fails over as {', '.join(SCOPE_FAILOVER_KINDS)} (then "
                               f"{', '.join(SCOPE_FOLLOW_UP_KINDS)}); not `{command.args[2][:30]}`.", usage)
        return
    scope = recovery_scope(command)
    if scope is None:
        return
    site = command.extra.get("site")
    if site is not None and not _HOST.match(site):
        raise CommandError(f"`{site[:30]}` is not a site name (letters, digits, . - _).", usage)
    if site is not None and command.host:
        raise CommandError("Give either `--site SITE` or `--host HOST`, not both.", usage)
    if "point" in command.extra:
        raise CommandError("`--point` chooses a recovery point of one VM; a site or host failover uses each VM's "
                           "latest point.", usage)
    if site is not None and args and args[0] not in (*FAILOVER_KINDS, *SCOPE_FOLLOW_UP_KINDS):
        raise CommandError(f"`failover --site {site}` takes no VM name; to fail over one VM, drop `--site`.", usage)
    if len(args) > 1 or scope.failover not in SCOPE_KINDS:
        raise CommandError(f"A {scope.kind} failover is {', '.join(SCOPE_FAILOVER_KINDS)}, and after one "
                           f"{', '.join(SCOPE_FOLLOW_UP_KINDS)}; not `{' '.join(command.args)[:30]}`.", usage)
