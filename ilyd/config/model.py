"""The typed, frozen configuration the daemon runs on.

Built only by `ilyd.config.loader.load_config`; every instance is valid. Equality of
`OrgConfig` values is what reload uses to decide which orgs to restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NewType

from ilyd.config.enrich import DEFAULT_ENRICH, EnrichConfig
from ilyd.config.secrets import SecretRef

OrgName = NewType("OrgName", str)

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"


@dataclass(frozen=True)
class DaemonConfig:
    """`[daemon]`: where state and the control socket live, and how to log."""

    state_dir: Path
    control_socket: Path
    log_format: str  # auto | json | console
    log_level: str  # debug | info | warning | error
    processes: int | None = None  # worker processes; None: auto (see ilyd.daemon.shards)
    # A running org shows `degraded` once a problem has lasted this long (ilyd.actors.health).
    degraded_after: float = 30.0
    # Threads each daemon process runs every org's blocking lookups on (ilyd.pipeline.lookups).
    lookup_threads: int = 32
    # Each process that runs orgs keeps its threads on one CPU (ilyd.daemon.pinning).
    cpu_pinning: bool = True


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: the Prometheus endpoint."""

    listen: tuple[str, int] | None  # None: no metrics endpoint
    per_org: bool


@dataclass(frozen=True)
class DefaultsConfig:
    """`[defaults]`: settings every `[[org]]` inherits unless it sets them itself."""

    api_version: str
    objects: tuple[str, ...]
    workers: int
    poll_interval: float
    api_budget_ratio: float
    auto_provision: bool
    enrich: EnrichConfig = DEFAULT_ENRICH
    reconcile_interval: float = 900.0  # seconds; 0: no reconciliation sweep
    recheck_within: float = 300.0  # seconds: a warm start's checks run again by then
    auto_layout: bool = False  # provisioning adds the Ily section to page layouts
    source: str = "auto"  # auto | cdc | pushtopic | polling
    call_client: str = "ilyd"  # Sforce-Call-Options client of every call


@dataclass(frozen=True)
class OrgConfig:
    """One `[[org]]`: how to reach and authenticate to a Salesforce org, and what to do."""

    name: OrgName
    environment: str  # "production", "sandbox" or the custom login URL
    login_url: str
    auth: str  # refresh_token | jwt | client_credentials | password
    client_id: str
    username: str | None
    client_secret: SecretRef | None
    private_key: SecretRef | None
    refresh_token: SecretRef | None
    password: SecretRef | None
    ca_file: Path | None
    enabled: bool
    api_version: str
    objects: tuple[str, ...]
    workers: int
    poll_interval: float
    api_budget_ratio: float
    auto_provision: bool
    enrich: EnrichConfig = DEFAULT_ENRICH
    reconcile_interval: float = 900.0  # seconds; 0: no reconciliation sweep
    recheck_within: float = 300.0  # seconds: a warm start's checks run again by then
    auto_layout: bool = False  # provisioning adds the Ily section to page layouts
    source: str = "auto"  # auto | cdc | pushtopic | polling
    call_client: str = "ilyd"  # Sforce-Call-Options client of every call
    # [org.scope]: (object, SOQL condition) pairs; only matching records are enriched.
    scope: tuple[tuple[str, str], ...] = ()

    @property
    def is_sandbox(self) -> bool:
        """Whether this org authenticates against the sandbox login host."""
        return self.environment == "sandbox"

    def secrets(self) -> tuple[SecretRef, ...]:
        """The secret references this org's auth method needs at start."""
        refs = (self.client_secret, self.private_key, self.password)
        needed = [r for r in refs if r is not None]
        if self.auth == "refresh_token" and self.refresh_token is not None:
            needed.append(self.refresh_token)
        return tuple(needed)


@dataclass(frozen=True)
class OrgConfigError:
    """An `[[org]]` that could not be loaded: it runs in state config_error, the rest run."""

    name: OrgName  # its slug when readable and unique, else "org[INDEX]"
    index: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """The whole configuration file, validated."""

    path: Path
    daemon: DaemonConfig
    metrics: MetricsConfig
    defaults: DefaultsConfig
    orgs: tuple[OrgConfig, ...]
    org_errors: tuple[OrgConfigError, ...] = ()
    # Not ready yet, but no mistake (a refresh token `ilyd connect` has not stored yet).
    warnings: tuple[str, ...] = ()

    def org_names(self) -> tuple[OrgName, ...]:
        """Every org the config names: the loaded ones, then those with config errors."""
        return tuple(o.name for o in self.orgs) + tuple(e.name for e in self.org_errors)

    def problems(self) -> tuple[str, ...]:
        """Every problem of the orgs that could not be loaded."""
        return tuple(p for e in self.org_errors for p in e.problems)

    def org(self, name: str) -> OrgConfig | None:
        """The loaded org named `name`, or None."""
        return next((o for o in self.orgs if o.name == name), None)
