"""Replication charts from the lab's timeline: the monitor's sweeps over simulated hours write the history, the
chart job renders real PNGs from it, and `/hyperv replication VM` uploads one through files_upload_v2 to the fake
Slack. The history is trimmed at every write, so its memory stays bounded whatever the sweep rate."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.delivery.files import SlackFileUploader
from jobs import keys
from jobs import ports as reporting
from jobs.monitor import chart_tasks, history
from tests.integration.bot.test_monitor_chat import QUEUE, _app, _dispatch
from tests.integration.bot.test_monitor_sweep import World, r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_slack import slash_body
from tests.support.workers import work_dry

VM = "vm-000-0000"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def _timeline(w: World, hours: float = 3.0, every_s: int = 300) -> datetime:
    """Sweeps every 5 minutes over `hours` of simulated time; VM turns Critical half way and back to Normal."""
    steps = int(hours * 3600 / every_s)
    for i in range(steps + 1):
        if i == steps // 2:
            w.set("hv-000", VM, health="Critical")
        if i == 3 * steps // 4:
            w.set("hv-000", VM, health="Normal")
        w.sweep(i * every_s)
    return w.at(steps * every_s)


def test_vm_and_fleet_charts_from_the_lab_timeline(world: Any, tmp_path: Any) -> None:
    w = world(2, 2)
    now = _timeline(w)
    hosts = sorted(w.lab.hosts)
    series = history.vm_series(w.r, hosts, VM, now)
    samples = [s for side in series.values() for s in side]
    assert len(series["hv-000"]) == 37  # one per 5-minute sweep over 3 h
    assert [s.lag_s for s in samples if s.lag_s is not None], "the lag series is empty"
    assert {"Normal", "Critical"} <= {s.health for s in series["hv-000"]}
    title, png = chart_tasks.render(w.r, "vm", VM, hosts, now)
    assert png_size(png) == (900, 450) and len(png) > 20_000, len(png)
    (tmp_path / "vm.png").write_bytes(png)

    fleet = history.fleet_series(w.r, hosts, now)
    assert len(fleet) == 13  # one per 15-minute slot over 3 h
    assert all(sum(s.counts[n] for n in history.HEALTH_NAMES) > 0 for s in fleet)
    assert any(s.counts["Critical"] for s in fleet)
    _, fleet_png = chart_tasks.render(w.r, "fleet", "all hosts", hosts, now)
    assert png_size(fleet_png) == (900, 450) and len(fleet_png) > 20_000


def test_history_trimming_bounds_memory(r: Any) -> None:
    """Eight days of sweeps: a VM keeps at most 288 samples (24 h / 5 min), a host 672 (7 d / 15 min), and the bytes
    Redis reports stay under the figures docs/charts.md states; a series no longer written expires."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"vm": f"vm-{i:02d}", "health": ("Normal", "Warning", "Critical")[i % 3], "lag_s": 90 + i}
            for i in range(10)]
    for step in range(0, 8 * 86400, 300):
        if step % 900 == 0 or step >= 7 * 86400:  # sparse for a week, then every 5 minutes: both windows trimmed
            history.record(r, "hv-x", True, rows, t0 + timedelta(seconds=step))
    history.record(r, "hv-x", True, rows, t0 + timedelta(seconds=8 * 86400 - 300))  # a second sweep, same slot
    vm_key, host_key = keys.HISTORY_VM_KEY.format("hv-x", "vm-00"), keys.HISTORY_HOST_KEY.format("hv-x")
    assert r.xlen(vm_key) == 288 and r.xlen(host_key) == 672
    first = int(r.xrange(vm_key, count=1)[0][0].split(b"-")[0]) / 1000
    assert (t0 + timedelta(days=8)).timestamp() - first <= history.VM_WINDOW_S + history.VM_STEP_S
    vm_bytes, host_bytes = r.memory_usage(vm_key, samples=0), r.memory_usage(host_key, samples=0)
    print(f"history bytes: VM side {vm_bytes} ({r.xlen(vm_key)} samples), host {host_bytes} "
          f"({r.xlen(host_key)} samples)")
    assert vm_bytes < 16_000 and host_bytes < 48_000
    assert 0 < r.ttl(vm_key) <= history.VM_WINDOW_S + history.VM_STEP_S
    assert 0 < r.ttl(host_key) <= history.HOST_WINDOW_S + history.HOST_STEP_S


@pytest.fixture
def uploader(world: Any) -> Iterator[None]:
    previous = reporting.current_uploader()
    yield
    reporting.install_uploader(previous)


def test_replication_vm_uploads_a_png(world: Any, uploader: None) -> None:
    w = world(2, 2)
    _timeline(w, hours=1)
    app = _app(w)
    reporting.install_uploader(SlackFileUploader(app.runtime.client))  # type: ignore[attr-defined]
    answer = json.loads(_dispatch(app, slash_body(f"replication {VM}", user="U200")))
    assert "A chart of vm-000-0000 follows" in answer["text"]
    work_dry(QUEUE, w.r)
    done = w.slack.wait_for(lambda calls: [c for c in calls if c.method == "files.completeUploadExternal"], 30)
    file_id = json.loads(done[0].args["files"])[0]["id"] if isinstance(done[0].args["files"], str) else \
        done[0].args["files"][0]["id"]
    assert png_size(w.slack.files[file_id]) == (900, 450)
    assert w.slack.file_names[file_id] == f"hvbot-vm-{VM}.png"
    assert done[0].args.get("channel_id") == "C100"
