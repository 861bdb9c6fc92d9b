"""The console adapter: chat with the bot in a terminal through the same Bolt dispatch Slack uses.

Requests enter as Socket-Mode-style BoltRequests; the bot's Web API calls go to an in-process fake Slack
and are printed as text. `press N` clicks a button, `as U123` acts as another user, `in C123` changes channel.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from rq import SimpleWorker
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import Call, FakeSlack
from bot.adapters.render_text import Button, render_blocks

_JOB = re.compile(r"\bjob (hv[0-9a-f]+)")
SHOWN = {"chat.postMessage", "chat.update", "chat.postEphemeral", "response_url", "files.completeUploadExternal"}
CONSOLE_HELP = (
    "Type /hyperv commands (or just `ips 10.0.4.17`). `press N` clicks button N, `as U123` acts as another "
    "user, `in C123` switches channel, `quit` leaves."
)


class ThreadWorker(SimpleWorker):
    """An RQ worker in a thread of this process: no signal handlers, timer-based job timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def start_worker_thread(queue: str, connection: Any) -> ThreadWorker:
    worker = ThreadWorker([queue], connection=connection, serializer=JSONSerializer)
    threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"}, name="hvbot-worker", daemon=True).start()
    return worker


class Console:
    def __init__(self, app: App, fake: FakeSlack, out: TextIO, user: str = "U100", channel: str = "C100") -> None:
        self.app, self.fake, self.out = app, fake, out
        self.user, self.channel = user, channel
        self.buttons: dict[int, Button] = {}
        self._numbers = itertools.count(1)
        self._urls = itertools.count(1)
        self._lock = threading.Lock()
        self._ack_first = threading.Lock()  # the ack is printed before anything the worker posts for it
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
        else:
            self.slash(line[len("/hyperv"):].strip() if word == "/hyperv" else line)
        return True

    def slash(self, text: str) -> None:
        start = len(self.fake.calls)
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
        self.app.runtime.intake.drain()  # type: ignore[attr-defined]  # lookups are queued just after the ack
        for job_id in _JOB.findall(json.dumps(ack)):
            self._wait_job(job_id, start)
        self._wait_idle()

    def press(self, number: str) -> None:
        button = self.buttons.get(int(number)) if number.isdigit() else None
        if button is None:
            self._print([f"(no button {number!r}; buttons are shown as [N])"])
            return
        start = len(self.fake.calls)
        body = {
            "type": "block_actions", "user": {"id": self.user, "username": self.user.lower()},
            "team": {"id": "T0HVBOT"}, "api_app_id": "A0HVBOT", "channel": {"id": button.channel},
            "container": {"type": "message", "channel_id": button.channel, "message_ts": button.message_ts,
                          "is_ephemeral": not button.message_ts},
            "response_url": button.response_url, "trigger_id": "console",
            "actions": [{"action_id": button.action_id, "value": button.value, "type": "button",
                         "block_id": "console", "action_ts": "1"}],
        }
        self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        try:
            self.fake.wait_for(lambda calls: any(c.method in SHOWN for c in calls[start:]), timeout=30)
        except TimeoutError:
            self._print(["(no answer from hvbot within 30 s)"])
        self._wait_idle()

    def _wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until the worker has nothing queued or running, so follow-up jobs (previews, failover steps) print
        before the next line is read. Jobs scheduled for later (retries) do not hold the console."""
        runtime = self.app.runtime  # type: ignore[attr-defined]
        started = StartedJobRegistry(runtime.settings.queue, connection=runtime.redis)
        deadline = time.monotonic() + timeout
        while runtime.queue.count or started.get_job_ids(cleanup=False):
            if time.monotonic() > deadline:
                self._print([f"(hvbot is still working after {timeout:.0f} s)"])
                return
            time.sleep(0.05)

    def _wait_job(self, job_id: str, start: int) -> None:
        job = Job.fetch(job_id, connection=self.app.runtime.redis, serializer=JSONSerializer)  # type: ignore[attr-defined]
        timeout = int(self.app.runtime.settings.job_timeout_seconds) + 30  # type: ignore[attr-defined]
        if job.latest_result(timeout=timeout) is None:
            self._print([f"(job {job_id} has not finished after {timeout} s)"])

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
        with self._ack_first:  # wait until the request's own ack has been printed
            pass
        args = call.args
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
