"""The front process's /metrics: its own series and every worker's, as one exposition.

Each worker answers the `metrics` verb with its exposition; the front parses them and
adds them to its own registry's families. Series are keyed by name and labels: per-org
series come from one worker each, and the others (counters, histograms, gauges such as
`ilyd_orgs{state}` or `process_resident_memory_bytes`) add up over the processes, which
is what a dashboard of "the daemon" means. A `_created` sample (and a process's start
time) is the earliest one. What only the front knows — the build, the config generation
and reloads, the control requests operators made, its limits — is taken from the front
alone: a worker's copy would be counted twice, or count the front's own requests to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

# Families the front reports for the whole daemon, as the text parser names them
# (counters without _total; an info metric keeps its _info).
FRONT_ONLY = frozenset({
    "ilyd_build_info",
    "ilyd_config_last_reload_successful",
    "ilyd_config_last_reload_success_timestamp_seconds",
    "ilyd_config_generation",
    "ilyd_control_requests",
    "ilyd_control_request_failures",
    "python_info",
    "process_max_fds",
})
_EARLIEST = ("process_start_time_seconds",)


class MergedMetrics(Collector):
    """`local`'s families plus the workers' (`expositions()`: one text per answering worker)."""

    def __init__(self, local: Any, expositions: Callable[[], Iterable[str]]) -> None:
        self._local = local
        self._expositions = expositions

    def collect(self) -> Iterator[Metric]:
        """One family per name; equal series summed (earliest for times of creation)."""
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}

        def add(family: Metric) -> None:
            families.setdefault(family.name, Metric(family.name, family.documentation,
                                                    family.type, family.unit))
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in series:
                    series[key] = sample.value
                elif sample.name.endswith("_created") or sample.name in _EARLIEST:
                    series[key] = min(series[key], sample.value)
                else:
                    series[key] += sample.value

        for family in self._local.collect():
            add(family)
        for text in self._expositions():
            for family in text_string_to_metric_families(text):
                if family.name not in FRONT_ONLY:
                    add(family)
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family
