"""Reading Prometheus metrics the way Prometheus does: GET /metrics, parsed by prometheus-client's own parser;
and the `hvbot_*` names that PromQL expressions in deploy/prometheus/ use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fixtures_slack import get
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy" / "prometheus"
NAME = re.compile(r"\bhvbot_[a-z0-9_]+")


@dataclass(frozen=True)
class Scrape:
    # the sample names a family of each type adds (a family with no sample yet exposes only its name)
    SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": (), "summary": (),
                "info": ("_info",), "untyped": (), "unknown": (), "stateset": (), "gaugehistogram": ()}

    families: frozenset[str]  # family names, as registered (counters without _total)
    samples: tuple[tuple[str, tuple[tuple[str, str], ...], float], ...]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families, samples = set(), []
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            samples += [(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples]
        return cls(frozenset(families), tuple(samples))

    def names(self) -> set[str]:
        """Every name an expression may use: families, their samples, and the suffixes their types add."""
        return {*self.families, *(name for name, _, _ in self.samples)}

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of the samples called `name` whose labels include `labels`; None when there is none."""
        found = [v for n, ls, v in self.samples if n == name and set(labels.items()) <= set(ls)]
        return sum(found) if found else None


def scrape(port: int) -> Scrape:
    status, text = get(port, "/metrics")
    if status != 200:
        raise AssertionError(f"GET /metrics on port {port} answered {status}")
    return Scrape.parse(text)


def job_counted(port: int, kind: str, outcome: str) -> Scrape | None:
    """The worker's scrape once it has counted a `kind` job with `outcome`, count and duration both; None before.
    They are two writes: a scrape between them sees the count without the duration."""
    if get(port, "/healthz")[0] != 200:
        return None  # the worker is still starting (it restarts itself in multiprocess mode first)
    scraped = scrape(port)
    seen = [scraped.value(name, kind=kind, outcome=outcome)
            for name in ("hvbot_jobs_total", "hvbot_job_duration_seconds_count")]
    return scraped if all(seen) else None


def used_names() -> dict[str, set[str]]:
    """`hvbot_*` names in every expression of the alert rules and the Grafana dashboard, by where they occur."""
    used: dict[str, set[str]] = {}
    for group in yaml.safe_load((DEPLOY / "hvbot-alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            used[f"rule {rule['alert']}"] = set(NAME.findall(rule["expr"]))
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        used[f"panel {panel['title']!r}"] = set().union(*(NAME.findall(t["expr"]) for t in panel["targets"]))
    return used


def missing_names(exported: Iterable[str]) -> dict[str, set[str]]:
    known = set(exported)
    return {where: names - known for where, names in used_names().items() if names - known}
