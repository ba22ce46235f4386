"""The `enrich` table of `[defaults]` / `[[org]]`: sources, overwrite policy, writer window.

```toml
[defaults.enrich]
writer_window = 0.1          # seconds a single result waits for others to share its call
refresh_after = "30d"        # re-enrich records enriched longer ago than this; 0 = off
# per Ily field: unless_edited (the default) | always | if_blank
overwrite = { Ily_Industry__c = "if_blank" }

[[defaults.enrich.provider]]
type = "dataset"
path = "@sample"             # the bundled sample; or a CSV / JSONL / SQLite file
```

Providers are `dataset`, `http` (a vendor's API) or `dns` (live technographics); their
tables are in `ilyd.config.enrich_providers`. An `[[org]]` may carry its own
`[org.enrich]`, which replaces the defaults' as a whole. Relative dataset and secret file
paths are resolved against the config file's directory by the org spec.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from ilyd.config.duration import duration
from ilyd.config.enrich_providers import PROVIDER_TYPES, ProviderSpec, parse_provider
from ilyd.config.schema import (
    Field,
    NestedProblemsError,
    Problems,
    Table,
    join_path,
    number,
    type_name,
)
from ilyd.config.secrets import SecretRef
from ilyd.enrich.dataset_settings import DatasetSettings
from ilyd.enrich.fields import by_api_name

__all__ = ["DEFAULT_ENRICH", "PROVIDER_TYPES", "EnrichConfig", "OverwritePolicy",
           "ProviderSpec", "enrich_settings"]


class OverwritePolicy(StrEnum):
    """Whether ilyd replaces a value already in an Ily field."""

    ALWAYS = "always"  # ilyd owns the field: every enrichment writes it
    IF_BLANK = "if_blank"  # only fill an empty field (someone else may curate it)
    # Write when blank or still holding ilyd's last value: a person's edit protects the
    # field until an admin clears it or releases it (`ilyd ctl release`).
    UNLESS_EDITED = "unless_edited"


@dataclass(frozen=True)
class EnrichConfig:
    """How one org enriches: its providers in order of trust, overwrite policy, batching.

    `overwrite` is a tuple of (Ily API name, policy) pairs (tuples keep the config
    hashable); fields not named are `unless_edited`.
    """

    providers: tuple[ProviderSpec, ...] = (
        ProviderSpec("dataset", DatasetSettings(path=Path("@sample"))),)
    overwrite: tuple[tuple[str, OverwritePolicy], ...] = ()
    writer_window: float = 0.1
    # The window widens up to `writer_window_max` seconds while the writer's projected
    # daily calls would pass `api_share` of the org's allowance (ilyd.pipeline.window).
    writer_window_max: float = 30.0
    api_share: float = 0.2
    history_days: float = 30.0  # `ilyd ctl history` keeps this many days of each record
    # Scheduled refresh: records whose Last Enriched is older than `refresh_after`
    # seconds (0: off) are enriched again, spending at most `refresh_api_share` of the
    # org's daily API allowance; the backlog is counted every `refresh_interval`.
    refresh_after: float = 30 * 86400.0
    refresh_api_share: float = 0.05
    refresh_interval: float = 6 * 3600.0

    def policy(self, api_name: str) -> OverwritePolicy:
        """The overwrite policy of one Ily field."""
        return self._policies.get(api_name, OverwritePolicy.UNLESS_EDITED)

    @cached_property
    def _policies(self) -> Mapping[str, OverwritePolicy]:
        # Asked for every field of every record a writer sends: built once per config.
        return dict(self.overwrite)

    def if_blank_fields(self) -> frozenset[str]:
        """The Ily fields that are only written when empty."""
        return frozenset(n for n, p in self.overwrite if p is OverwritePolicy.IF_BLANK)

    def resolved(self, base_dir: Path) -> EnrichConfig:
        """With the sample resolved and relative dataset and secret file paths absolute."""
        return replace(self, providers=tuple(p.resolved(base_dir) for p in self.providers))

    def secret_refs(self) -> tuple[SecretRef, ...]:
        """The secret references of the providers (read when the org starts)."""
        return tuple(p.secret for p in self.providers if p.secret is not None)

    def __str__(self) -> str:
        names = ", ".join(p.describe() for p in self.providers)
        policy = ", ".join(f"{n}={p}" for n, p in self.overwrite) or "all unless_edited"
        return (f"providers [{names}]; overwrite {policy}; writer_window {self.writer_window}s"
                f" (up to {self.writer_window_max:g}s past api_share {self.api_share:.0%})")


DEFAULT_ENRICH = EnrichConfig()


def _providers(raw: Any) -> tuple[ProviderSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("must be a non-empty array of tables: write each as [[…provider]]")
    problems: list[str] = []
    specs = []
    for index, item in enumerate(raw):
        key = f"[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{key}: must be a table (got {type_name(item)})")
            continue
        try:
            specs.append(parse_provider(item, key))
        except NestedProblemsError as exc:
            problems.extend(exc.items)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f": names must be unique in a chain (set name = …): "
                        f"{', '.join(duplicates)}")
    if problems:
        raise NestedProblemsError(problems)
    return tuple(specs)


def _overwrite(raw: Any) -> tuple[tuple[str, OverwritePolicy], ...]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a table of Ily field = \"unless_edited\" | \"always\""
                         f" | \"if_blank\""
                         f" (got {type_name(raw)})")
    known = sorted(by_api_name())
    problems = []
    pairs = []
    for name, value in raw.items():
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            problems.append(f"{name}: not an Ily field"
                            + (f" (did you mean {hint[0]}?)" if hint else ""))
            continue
        try:
            pairs.append((name, OverwritePolicy(value)))
        except ValueError:
            problems.append(f"{name}: must be \"unless_edited\", \"always\" or \"if_blank\""
                            f" (got {value!r})")
    if problems:
        raise NestedProblemsError(problems)
    return tuple(sorted(pairs))


def _check_window(values: dict[str, Any], path: str, problems: Problems) -> None:
    if values["writer_window_max"] < values["writer_window"]:
        problems.add(join_path(path, "writer_window_max"),
                     f"must be at least writer_window ({values['writer_window']:g})"
                     f" (got {values['writer_window_max']:g})")


_TABLE: Table[EnrichConfig] = Table(
    fields=(
        Field("provider", _providers, DEFAULT_ENRICH.providers,
              "enrichment sources in order of trust"),
        Field("overwrite", _overwrite, (), "per Ily field: unless_edited | always | if_blank"),
        Field("writer_window", number(0.0, 10.0), DEFAULT_ENRICH.writer_window,
              "seconds a write waits for others to share its Collections call"),
        Field("writer_window_max", number(0.0, 600.0), DEFAULT_ENRICH.writer_window_max,
              "seconds the window may widen to while calls are scarce (api_share)"),
        Field("api_share", number(0.001, 1.0), DEFAULT_ENRICH.api_share,
              "share of the org's daily API allowance the real-time writer may use"),
        Field("history_days", number(1.0, 3650.0), DEFAULT_ENRICH.history_days,
              "days of ilyd's work on each record kept for ilyd ctl history"),
        Field("refresh_after", duration(3600.0, 3650 * 86400.0, zero=True),
              DEFAULT_ENRICH.refresh_after,
              "re-enrich records whose Ily Last Enriched is older than this (\"30d\"); 0 = off"),
        Field("refresh_api_share", number(0.001, 1.0), DEFAULT_ENRICH.refresh_api_share,
              "share of the org's daily API allowance the refresh may spend"),
        Field("refresh_interval", duration(1.0, 30 * 86400.0), DEFAULT_ENRICH.refresh_interval,
              "time between two counts of the refresh backlog (\"6h\")"),
    ),
    build=lambda provider, **rest: EnrichConfig(providers=provider, **rest),
    check=_check_window,
)


def enrich_settings() -> Any:
    """Converter of the `enrich` table (every problem in one message, key paths relative)."""

    def convert(value: Any) -> EnrichConfig:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table (got {type_name(value)})")
        problems = Problems()
        built = _TABLE.parse(value, "", problems)
        if built is None:
            raise NestedProblemsError(problems.items or [": invalid"])
        return built

    return convert
