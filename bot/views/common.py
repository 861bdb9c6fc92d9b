"""Block Kit messages built with slack_sdk.models (validated at to_dict), within Slack's limits.

Slack: 50 blocks per message, 3,000 chars per section, ~12k chars of block text in total (msg_blocks_too_long).
Big results are paged (Prev/Next) and offered as CSV; rows are never dropped silently.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.views import tables
from jobs import units
from jobs.job_listing import job_line

MAX_BLOCKS = 50
SECTION_CHARS = 3000
MESSAGE_CHARS = 11_000  # stay under the undocumented ~13k total that triggers msg_blocks_too_long
CELL_CHARS = 40
MAX_ERROR_LINES = 15

ACTION_PAGE = "hvbot_page"
ACTION_CSV = "hvbot_csv"


@dataclass(frozen=True)
class View:
    text: str  # notification / fallback text
    blocks: list[Block]

    def block_dicts(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]  # validates every block


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def working(command: str, job_id: str) -> View:
    text = f"Working on `{_escape(command)}` …"
    return View(text, [_md(text), _context(f"job {job_id}")])


def failure(command: str, job_id: str, message: str) -> View:
    text = f":x: `{_escape(command)}`: {_escape(message)}"
    return View(text, [_md(text[:SECTION_CHARS]), _context(f"job {job_id}")])


def notice(text: str) -> View:
    return View(text, [_md(_escape(text)[:SECTION_CHARS])])


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def columns_of(report: dict[str, Any]) -> list[str]:
    columns = [str(c) for c in report.get("columns") or []]
    if not columns and report.get("rows"):
        columns = list(report["rows"][0].keys())
    return columns if "host" in columns else ["host", *columns]


def _cell(value: Any) -> str:
    text = "" if value is None else (", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    text = text.replace("\n", " ").replace("`", "'")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def table_lines(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def fmt(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return [fmt(columns), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells]


def _code_sections(lines: list[str]) -> list[Block]:
    """Pack lines into ``` sections of at most SECTION_CHARS each."""
    sections: list[Block] = []
    chunk: list[str] = []
    for line in lines:
        line = line[: SECTION_CHARS - 8]
        size = sum(len(x) + 1 for x in chunk)
        if chunk and size + len(line) + 8 > SECTION_CHARS:
            sections.append(_md("```" + "\n".join(chunk) + "```"))
            chunk = []
        chunk.append(line)
    if chunk:
        sections.append(_md("```" + "\n".join(chunk) + "```"))
    return sections


def page_count(report: dict[str, Any], rows_per_page: int) -> int:
    return max(1, math.ceil(len(report.get("rows") or []) / rows_per_page))


def error_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for err in report.get("errors") or []:
        host, message = str(err.get("host", "?")), str(err.get("message", "failed"))
        message = message[len(host) + 1 :].lstrip() if message.startswith(host + ":") else message
        lines.append(f":warning: *{_escape(host)}*: {_escape(message)}")
    return lines


def result(command: str, job_id: str, report: dict[str, Any], page: int = 0, rows_per_page: int = 20,
           now: datetime | None = None) -> View:
    """One page of a Report: summary, table, one line per host error, and paging/CSV buttons when needed.

    Cells read as people read them (bot/views/tables.py; ages count from ``now``). Wide rows shrink the page
    (never the rows) until the message fits Slack's size limits; the buttons carry the page size, so Prev/Next
    stay consistent."""
    per = max(rows_per_page, 1)
    now = now or datetime.now(UTC)
    while True:
        view, fits = _page(command, job_id, report, page, per, now)
        if fits or per == 1:
            _check_limits(view.blocks)
            return view
        page, per = (page * per) // max(per // 2, 1), max(per // 2, 1)


def _page(command: str, job_id: str, report: dict[str, Any], page: int, per: int,
          now: datetime) -> tuple[View, bool]:
    rows = list(report.get("rows") or [])
    pages = page_count(report, per)
    page = min(max(page, 0), pages - 1)
    shown = rows[page * per : (page + 1) * per]
    summary = _summary(command, report, len(rows), page, pages, per)
    blocks: list[Block] = [_md(summary)]
    columns = columns_of(report)
    if shown:
        blocks += _code_sections(table_lines(*tables.readable(columns, shown, now)))
        if legend := tables.legend(columns, shown):
            blocks.append(_context(_escape(legend)[:SECTION_CHARS]))
    elif not report.get("errors"):
        blocks.append(_md(tables.empty_text(report, command)))
    blocks += _error_blocks(report)
    if pages > 1:
        blocks.append(_buttons(job_id, page, pages, per))
    blocks.append(_context(f"job {job_id}"))
    fits = len(blocks) <= MAX_BLOCKS and not _too_big(blocks)
    return View(summary.replace("*", ""), blocks), fits


def _summary(command: str, report: dict[str, Any], total: int, page: int, pages: int, per: int) -> str:
    ok = report.get("hosts_ok")
    hosts_ok = len(ok) if isinstance(ok, (list, tuple)) else ok
    errors = len(report.get("errors") or [])
    hosts = f"{units.plural(hosts_ok, 'host')} answered" if hosts_ok is not None else ""
    failed = f", {errors} with errors" if errors else ""
    rows = units.plural(total, *tables.row_nouns(report, command))
    where = f" (rows {page * per + 1}–{min(total, (page + 1) * per)}, page {page + 1} of {pages})" if pages > 1 else ""
    return f"*`{_escape(command)}`* — {rows}{where}; {hosts}{failed}".rstrip("; ")


def _error_blocks(report: dict[str, Any]) -> list[Block]:
    lines = error_lines(report)
    if not lines:
        return []
    shown, rest = lines[:MAX_ERROR_LINES], len(lines) - MAX_ERROR_LINES
    if rest > 0:
        shown.append(f"…and {units.plural(rest, 'more host error')} (all of them are in the CSV).")
    text = "\n".join(shown)
    return [_md(text[i : i + SECTION_CHARS]) for i in range(0, len(text), SECTION_CHARS)]


def _buttons(job_id: str, page: int, pages: int, per: int) -> ActionsBlock:
    elements = []
    if page > 0:
        elements.append(ButtonElement(text="◂ Prev", action_id=f"{ACTION_PAGE}_prev", value=f"{job_id}:{page - 1}:{per}"))
    if page < pages - 1:
        elements.append(ButtonElement(text="Next ▸", action_id=f"{ACTION_PAGE}_next", value=f"{job_id}:{page + 1}:{per}"))
    elements.append(ButtonElement(text="Download CSV", action_id=ACTION_CSV, value=job_id))
    return ActionsBlock(block_id=f"hvbot_nav_{job_id}_{page}", elements=elements)


def _too_big(blocks: list[Block]) -> bool:
    return sum(len(str(b.to_dict())) for b in blocks) > MESSAGE_CHARS


def _check_limits(blocks: list[Block]) -> None:
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"{len(blocks)} blocks exceed Slack's {MAX_BLOCKS}-block message limit")
    for block in blocks:
        block.to_dict()  # raises SlackObjectFormationError on any per-block limit


def report_csv(report: dict[str, Any]) -> str:
    """Every row and every host error, untruncated."""
    columns = columns_of(report)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in report.get("rows") or []:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    for err in report.get("errors") or []:
        writer.writerow([err.get("host", "")] + [f"ERROR {err.get('kind', '')}: {err.get('message', '')}"])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    text = "" if value is None else (";".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    # spreadsheet formula injection: a cell must not start with = + - @
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def jobs_list(jobs: list[dict[str, str]], limit: int = 40) -> View:
    if not jobs:
        return notice("No running or queued jobs.")
    lines = [f"• `{j['id']}` {_escape(job_line(j))}" + (f" by <@{j['user']}>" if j["user"] else "") for j in jobs[:limit]]
    if len(jobs) > limit:
        lines.append(f"…and {len(jobs) - limit} more.")
    text = "\n".join(lines)
    blocks: list[Block] = [_md("*Jobs*")]
    blocks += [_md(text[i : i + SECTION_CHARS]) for i in range(0, len(text), SECTION_CHARS)]
    return View("hvbot jobs", blocks)


def audit_list(entries: list[Any], now: datetime | None = None) -> View:
    if not entries:
        return notice("The audit log is empty.")
    lines = []
    for e in entries:
        when = units.when_and_age(datetime.fromtimestamp(e.at, UTC), now)
        job = f" job {e.job_id}" if e.job_id else ""
        line = f"{when} {e.user} in {e.channel}: {e.command} -> {e.outcome}{job} {e.detail}".rstrip()
        lines.append(_cell_line(line.replace("`", "'")))
    budget, shown = MESSAGE_CHARS - 500, list[str]()
    for line in lines:  # keep within one message; say so when older entries do not fit
        budget -= len(line) + 1
        if budget < 0:
            rest = len(lines) - len(shown)
            shown.append(f"…{units.plural(rest, 'older entry', 'older entries')} {'does' if rest == 1 else 'do'} not "
                          "fit; ask for fewer (/hyperv audit N).")
            break
        shown.append(line)
    blocks: list[Block] = [_md("*Audit* (newest first)")]
    return View("hvbot audit", blocks + _code_sections(shown))


def _cell_line(line: str, width: int = 200) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def approval_buttons(approve_id: str, reject_id: str, button_value: str, confirm: Any, expires: str,
                     style: str = "danger", note: str = "") -> list[Block]:
    """Approve / Reject of a two-person approval card, and the line saying who may approve and until when."""
    return [
        ActionsBlock(elements=[
            ButtonElement(text="Approve", action_id=approve_id, value=button_value, style=style, confirm=confirm),
            ButtonElement(text="Reject", action_id=reject_id, value=button_value),
        ]),
        ContextBlock(elements=[MarkdownTextObject(
            text=f"Needs an approver other than the requester; expires {expires}.{f' {note}' if note else ''}")]),
    ]
