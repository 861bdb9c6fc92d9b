"""Slack messages as terminal text: mrkdwn stripped, code blocks kept, buttons numbered for `press N`."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

_EMOJI = {":warning:": "!", ":x:": "x", ":white_check_mark:": "ok"}
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


@dataclass(frozen=True)
class Button:
    number: int
    action_id: str
    value: str
    label: str
    channel: str
    message_ts: str  # "" for ephemeral messages (no ts to update)
    response_url: str


def plain(text: str) -> str:
    for code, word in _EMOJI.items():
        text = text.replace(code, word)
    text = _MENTION.sub(r"@\1", text)
    if "```" not in text:
        text = re.sub(r"(?<!\w)[*_](\S[^*_\n]*?)[*_](?!\w)", r"\1", text).replace("`", "")
    else:
        text = text.replace("```", "\n").strip("\n")
    return html.unescape(text)


def render_blocks(blocks: list[dict[str, Any]], fallback: str, add_button: Any) -> list[str]:
    """Lines for one message; `add_button(action_id, value, label) -> number` numbers the buttons."""
    if not blocks:
        return plain(fallback).splitlines()
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("section", "header"):
            text = (block.get("text") or {}).get("text", "")
            lines += plain(text).splitlines()
            for fld in block.get("fields") or []:
                lines.append(plain(fld.get("text", "")))
        elif kind == "context":
            lines.append("  (" + " · ".join(plain(e.get("text", "")) for e in block.get("elements", [])) + ")")
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    label = (element.get("text") or {}).get("text", "")
                    number = add_button(element.get("action_id", ""), element.get("value", ""), label)
                    labels.append(f"[{number}] {label}")
            lines.append("  " + "   ".join(labels))
        elif kind == "divider":
            lines.append("-" * 40)
    return lines
