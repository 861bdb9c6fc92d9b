"""Install every port a worker or the monitor needs, so `jobs` can reach users without importing Slack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.delivery.alert_poster import alert_poster
from bot.delivery.recovery_cards import RecoveryCardReporter
from bot.delivery.drills import SlackDrillReporter
from bot.delivery.files import SlackFileUploader
from bot.runtime import Runtime
from jobs import ports as reporting


def install_reporters(runtime: Runtime) -> None:
    """Results and progress (SlackReporter), failover and approval cards (CardReporter), recovery run cards
    (RecoveryRunReporter), replica alerts (SlackAlertPoster), drills (SlackDrillReporter), charts
    (SlackFileUploader). Install them before running housekeeping: its chores tell users through them."""
    reporting.install(runtime.reporter)
    reporting.install_steps(runtime.card_reporter())
    reporting.install_recovery(runtime.recovery_reporter())
    reporting.install_poster(alert_poster(runtime.settings, runtime.redis))
    reporting.install_recovery_previewer(RecoveryCardReporter(runtime.settings, runtime.redis, runtime.client))
    reporting.install_drills(SlackDrillReporter(runtime.settings, runtime.redis, runtime.client))
    reporting.install_uploader(SlackFileUploader(runtime.client))


@contextmanager
def reporters_installed(runtime: Runtime) -> Iterator[None]:
    """The same, restoring the previous ones afterwards (the demo and tests run in one process)."""
    previous = reporting.current(), reporting.current_steps(), reporting.current_poster(), reporting.current_drills()
    previewer, recovery = reporting.current_recovery_previewer(), reporting.current_recovery()
    uploader = reporting.current_uploader()
    install_reporters(runtime)
    try:
        yield
    finally:
        reporting.install(previous[0])
        reporting.install_steps(previous[1])
        reporting.install_poster(previous[2])
        reporting.install_recovery_previewer(previewer)
        reporting.install_drills(previous[3])
        reporting.install_recovery(recovery)
        reporting.install_uploader(uploader)
