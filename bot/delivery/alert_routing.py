"""Where replica alerts go and when: the alert engine's rules from hvbot's settings (channels, on-call group)."""

from __future__ import annotations

from bot.settings import Settings
from jobs.monitor.rules import AlertRouting, AlertRules

# Each inline VM row carries its menu and confirm dialog (~280 characters of block text): 25 rows stay well under
# Slack's ~13k msg_blocks_too_long (bot.views.common.MESSAGE_CHARS); the rest goes in the CSV.
INLINE_ROWS = 25


def alert_rules(settings: Settings) -> AlertRules:
    """Routing and timers from the settings; the rest are AlertRules defaults (hyperv.md §7, Alertmanager)."""
    mention = f"<!subteam^{settings.oncall_usergroup}>" if settings.oncall_usergroup else None
    routing = AlertRouting(critical_channel=settings.alert_critical_channel,
                           warning_channel=settings.alert_warning_channel, oncall_mention=mention)
    # Two or more groups ready at once in a channel (e.g. site-a and site-b after a power cut) become one
    # message: each group's CSV would otherwise be a write of its own, and the storm budget is 3 per channel.
    return AlertRules(routing=routing, group_wait_s=settings.alert_group_wait_seconds,
                      repeat_interval_s=settings.alert_repeat_interval_seconds, coalesce_after_groups=1,
                      max_inline_rows=INLINE_ROWS)
