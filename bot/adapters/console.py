"""The console adapter: chat with the bot in a terminal through the same Bolt dispatch Slack uses.

Requests enter as Socket-Mode-style BoltRequests; the bot's Web API calls go to an in-process fake Slack
and are printed as text. `press N` clicks a button, `as U123` acts as another user, `in C123` changes channel,
`lab ...` drives the lab (`bot.adapters.console_lab`). After each line the console waits until every answer the
line started has arrived (`bot.adapters.console_wait`), up to a time limit.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from rq.exceptions import StopRequested
from rq.worker.base import WorkerStatus
from slack_bolt import App, BoltRequest

from bot.adapters.console_lab import LabControl, run_lab_command
from bot.adapters.console_wait import Outstanding
from bot.adapters.fake_slack import Call, FakeSlack
from bot.adapters.render_text import Button, render_blocks
from jobs.workers import PolledCommands

log = logging.getLogger("hvbot.console")

SHOWN = {"chat.postMessage", "chat.update", "chat.postEphemeral", "response_url", "files.completeUploadExternal",
         "views.publish"}
HOME_TAB = "home-tab"  # where a button printed from a Home view lives: its click carries a view, not a channel
CONSOLE_HELP = (
    "Type /hyperv commands (or just `ips 10.0.4.17`). `press N` clicks button N, `as U123` acts as another "
    "user, `in C123` switches channel, `home` opens your App Home tab, `lab help` lists the commands that drive "
    "the lab (power cuts, hung hosts), `wait-alert [TEXT]` waits for the monitor's alert after a lab command, "
    "`quit` leaves."
)


class ThreadWorker(PolledCommands, SimpleWorker):
    """An RQ worker in a thread of this process: no signal handlers, timer-based job timeouts. It waits for jobs
    a second at a time (RQ waits worker_ttl - 15 s) and heartbeats between waits, where `close` stops it."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, worker_ttl=16, **kwargs)
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self.run, name="hvbot-worker", daemon=True)

    def _install_signal_handlers(self) -> None:
        return None

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if self.closing.is_set() and self.get_state() == WorkerStatus.IDLE:
            raise StopRequested()  # RQ's work loop ends on it, between jobs, and tears the worker down
        super().heartbeat(timeout, pipeline)

    def run(self) -> None:
        try:
            self.work(logging_level="WARNING")
        except redis.RedisError:
            if not self.closing.is_set():
                raise
            # the session's Redis stopped before this thread noticed the end: nothing was left to do

    def close(self, timeout: float = 5.0) -> None:
        """The session ends (its Redis may stop next): stop taking jobs and wait a little for the thread to leave;
        a job still running (a hung host) is left behind quietly."""
        self.closing.set()
        self._stop_requested = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            logging.getLogger("rq.worker").setLevel(logging.CRITICAL)


def start_worker_thread(queue: str, connection: Any) -> ThreadWorker:
    worker = ThreadWorker([queue], connection=connection, serializer=JSONSerializer)
    worker.thread.start()
    return worker


class Console:
    def __init__(self, app: App, fake: FakeSlack, out: TextIO, waits: Outstanding, *, answer_timeout: float,
                 lab: LabControl | None = None, alert_channels: tuple[str, ...] = (), user: str = "U100",
                 channel: str = "C100") -> None:
        self.app, self.fake, self.out, self.waits, self.lab = app, fake, out, waits, lab
        self.alert_channels = alert_channels
        self.monitoring = False  # a replica-health monitor runs beside this console (the demo's)
        self.shown: list[Call] = []  # every call printed so far, in order
        self._shown = threading.Condition()
        self._mark = 0  # calls shown before the last `lab` command: `wait-alert` looks at what came after
        self.answer_timeout = answer_timeout
        self.unanswered: list[str] = []  # what the last line started and never answered within the limit
        self.user, self.channel = user, channel
        self.buttons: dict[int, Button] = {}
        self._numbers = itertools.count(1)
        self._urls = itertools.count(1)
        self._lock = threading.Lock()
        self._ack_first = threading.Lock()  # the ack is printed before anything the worker posts for it
        # Calls are printed by one thread of their own, in arrival order: a listener may post (a drill's approval
        # card) before its ack is printed, and holding the fake Slack's answer until then would deadlock it.
        self._printer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hvbot-console-print")
        self._printing: list[Future[None]] = []
        fake.listeners.append(self._on_call)

    # --- input -------------------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Act on one input line; False means quit."""
        line = line.strip()
        word, _, rest = line.partition(" ")
        if not line or line.startswith("#"):
            return True
        if word in ("quit", "exit"):
            return False
        if word == "help" and not rest:
            self._print([CONSOLE_HELP])
        elif word == "as" and rest:
            self.user = rest.strip()
            self._print([f"(you are now {self.user})"])
        elif word == "in" and rest:
            self.channel = rest.strip()
            self._print([f"(you are now in {self.channel})"])
        elif word == "press":
            self.press(rest.strip())
        elif word == "home":
            self.home()
        elif word == "lab":
            with self._shown:
                self._mark = len(self.shown)
            answer = run_lab_command(self.lab, rest).splitlines()
            self._print(answer if rest.strip() in ("", "help") else ["lab: " + line for line in answer])
        elif word == "wait-alert":
            self.wait_alert(rest.strip())
        else:
            self.slash(line[len("/hyperv"):].strip() if word == "/hyperv" else line)
        return True

    def slash(self, text: str) -> None:
        payload = {
            "command": "/hyperv", "text": text, "user_id": self.user, "user_name": self.user.lower(),
            "channel_id": self.channel, "channel_name": "console", "team_id": "T0HVBOT", "api_app_id": "A0HVBOT",
            "response_url": self.fake.response_url(f"c{next(self._urls)}"), "trigger_id": "console",
        }
        with self._ack_first:
            response = self.app.dispatch(BoltRequest(body=payload, mode="socket_mode"))
            ack = _ack_message(response.body)
            self._print(["hvbot (only you):"] + self._render(ack.get("blocks") or [], ack.get("text", ""),
                                                             self.channel, "", payload["response_url"]))
        self.settle()

    def home(self) -> None:
        """Open the App Home tab, as Slack's `app_home_opened` event does; the bot publishes the user's view."""
        event = {"type": "app_home_opened", "user": self.user, "channel": f"D{self.user}", "tab": "home",
                 "event_ts": f"{time.time():.6f}"}
        body = {"token": "console", "team_id": "T0HVBOT", "api_app_id": "A0HVBOT", "type": "event_callback",
                "event_id": f"Ev{next(self._urls)}", "event_time": int(time.time()), "event": event}
        self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        self.settle()

    def press(self, number: str) -> None:
        button = self.buttons.get(int(number)) if number.isdigit() else None
        if button is None:
            self._print([f"(no button {number!r}; buttons are shown as [N])"])
            return
        self.app.dispatch(BoltRequest(body=self._click(button), mode="socket_mode"))
        self.settle()

    def _click(self, button: Button) -> dict[str, Any]:
        """The block_actions payload Slack sends for this button: from a message, or from the Home tab (a view
        container, no channel and no response_url)."""
        body: dict[str, Any] = {
            "type": "block_actions", "user": {"id": self.user, "username": self.user.lower()},
            "team": {"id": "T0HVBOT"}, "api_app_id": "A0HVBOT", "trigger_id": "console",
            "actions": [{"action_id": button.action_id, "value": button.value, "type": "button",
                         "block_id": "console", "action_ts": "1"}],
        }
        if button.channel == HOME_TAB:
            return body | {"container": {"type": "view", "view_id": "VCONSOLE"},
                           "view": {"id": "VCONSOLE", "type": "home", "callback_id": ""}}
        return body | {
            "channel": {"id": button.channel}, "response_url": button.response_url,
            "container": {"type": "message", "channel_id": button.channel, "message_ts": button.message_ts,
                          "is_ephemeral": not button.message_ts},
        }

    def wait_alert(self, text: str) -> Call | None:
        """Wait until an alert posted (or updated) since the last `lab` command, mentioning `text` if given, has
        been printed."""
        def alert() -> Call | None:
            return next((c for c in self.shown[self._mark:] if c.method in ("chat.postMessage", "chat.update")
                         and str(c.args.get("channel")) in self.alert_channels
                         and text.lower() in json.dumps(c.args, ensure_ascii=False).lower()), None)

        with self._shown:
            found = self._shown.wait_for(alert, timeout=self.answer_timeout)
        if found is None:
            self.unanswered = [f"an alert{f' mentioning {text!r}' if text else ''} since the last lab command"]
            self._print([f"(no alert within {self.answer_timeout:g} s)"])
        return found

    def settle(self) -> None:
        """Wait until every answer started so far has arrived and been printed; past the limit, say which did not."""
        self.unanswered = self.waits.wait(self.answer_timeout)
        self._printed(self.answer_timeout)
        if self.unanswered:
            self._print([f"(no answer within {self.answer_timeout:g} s from:"]
                        + [f"  {what}" for what in self.unanswered] + [")"])

    # --- output ------------------------------------------------------------------------------------------
    def _save_upload(self, file_id: str) -> str:
        """Write an uploaded file (a chart, a CSV) where the terminal user can open it; its path, or ""."""
        content = self.fake.files.get(file_id)
        if content is None:
            return ""
        name = re.sub(r"[^A-Za-z0-9._-]", "_", self.fake.file_names.get(file_id, "") or "file")
        folder = Path(tempfile.gettempdir()) / "hvbot-files"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{file_id}-{name}"
        path.write_bytes(content)
        return str(path)

    def _on_call(self, call: Call) -> None:
        if call.method not in SHOWN or call.status != 200:
            return
        future = self._printer.submit(self._show_after_ack, call)
        with self._lock:
            self._printing = [f for f in self._printing if not f.done()] + [future]

    def _printed(self, timeout: float) -> None:
        """Wait until every call received so far has been printed."""
        with self._lock:
            pending = list(self._printing)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                self.unanswered.append("printing an answer that has arrived")
                return
            except Exception:  # noqa: BLE001 - a rendering bug must not end the session; it is logged
                log.exception("could not print a message the bot sent")

    def _show_after_ack(self, call: Call) -> None:
        with self._ack_first:  # wait until the request's own ack has been printed
            pass
        self._show(call)
        with self._shown:
            self.shown.append(call)
            self._shown.notify_all()

    def _show(self, call: Call) -> None:
        args = call.args
        if call.method == "views.publish":
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            self._print([f"hvbot (the Home tab of {args.get('user_id', '?')}):"]
                        + self._render(view.get("blocks") or [], "", HOME_TAB, "", ""))
            return
        if call.method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            titles = ", ".join(str(f.get("title", "")) for f in files)
            paths = [self._save_upload(str(f.get("id", ""))) for f in files]
            self._print([f"hvbot uploaded a file to {args.get('channel_id', '?')}: {titles}",
                         *(f"  saved as {p}" for p in paths if p)])
            return
        channel = str(args.get("channel", self.channel))
        ts = str(args.get("ts") or call.response.get("ts") or "")
        head = {
            "chat.postMessage": f"hvbot in {channel}:" if not args.get("thread_ts") else "hvbot (in the thread):",
            "chat.update": "hvbot (updated its message):",
            "chat.postEphemeral": "hvbot (only you):",
            "response_url": "hvbot (only you, replacing its answer):",
        }[call.method]
        url = self.fake.response_url(f"c{next(self._urls)}") if call.method != "chat.postMessage" else ""
        ephemeral_ts = "" if call.method in ("response_url", "chat.postEphemeral") else ts
        self._print([head] + self._render(args.get("blocks") or [], str(args.get("text", "")), channel,
                                          ephemeral_ts, url))

    def _render(self, blocks: list[dict[str, Any]], text: str, channel: str, ts: str, url: str) -> list[str]:
        def add(action_id: str, value: str, label: str) -> int:
            number = next(self._numbers)
            self.buttons[number] = Button(number, action_id, value, label, channel, ts, url)
            return number

        return ["  " + line for line in render_blocks(blocks, text, add)]

    def _print(self, lines: Iterable[str]) -> None:
        with self._lock:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()


def _ack_message(body: str) -> dict[str, Any]:
    if not body:
        return {"text": ""}
    try:
        data = json.loads(body)
        return data if isinstance(data, dict) else {"text": body}
    except ValueError:
        return {"text": body}


def run_lines(console: Console, stream: TextIO, interactive: bool) -> None:
    if interactive:
        console.handle("help")
    while True:
        if interactive:
            try:
                line = input(f"{console.user}@{console.channel}> ")
            except EOFError:
                return
        else:
            line = stream.readline()
            if not line:
                return
            console.out.write(f"> {line.rstrip()}\n")
        if not console.handle(line):
            return
        if console.unanswered and not interactive:
            return  # piped: stop at the first line that never answered; the caller exits 1
