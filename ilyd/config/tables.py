"""The specs of `[daemon]`, `[metrics]` and `[defaults]`.

`[[org]]` is in `ilyd.config.org`. A setting every org inherits is one `Field` in
`DEFAULTS_FIELDS` (with `inherit=True`) plus an attribute on `DefaultsConfig` and
`OrgConfig`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ilyd.config.enrich import DEFAULT_ENRICH, enrich_settings
from ilyd.config.model import DaemonConfig, DefaultsConfig, MetricsConfig
from ilyd.config.schema import (
    Field,
    Problems,
    Table,
    boolean,
    choice,
    integer,
    is_loopback_host,
    listen_address,
    number,
    optional,
    string,
    string_list,
)
from ilyd.salesforce.versions import DEFAULT_API_VERSION

SUPPORTED_OBJECTS = ("Account", "Lead")


def default_state_dir(base_dir: Path) -> Path:
    """`$STATE_DIRECTORY` under systemd (StateDirectory=), else var/state next to the
    config file (`base_dir`): like every relative path in it, so `ilyd connect` and
    `ilyd run` find the same tokens from any working directory."""
    env = os.environ.get("STATE_DIRECTORY")
    # systemd may pass several colon-separated directories; the first is ours.
    return Path(env.split(":")[0]) if env else base_dir / "var" / "state"


def default_control_socket(base_dir: Path) -> Path:
    """`$RUNTIME_DIRECTORY/control.sock` under systemd (RuntimeDirectory=), else
    var/run/control.sock next to the config file (`base_dir`), so `ilyd ctl --config`
    finds the daemon from any working directory."""
    env = os.environ.get("RUNTIME_DIRECTORY")
    return (Path(env.split(":")[0]) if env else base_dir / "var" / "run") / "control.sock"


def path_field(base_dir: Path) -> Any:
    """A path; relative paths are taken relative to the config file's directory."""

    def convert(value: Any) -> Path:
        return base_dir / Path(string()(value)).expanduser()

    return convert


def _processes() -> Any:
    """"auto" (None: worked out by ilyd.config.processes.process_count) or a count from 1 to 64."""
    count = integer(1, 64)

    def convert(value: Any) -> int | None:
        if value == "auto":
            return None
        if isinstance(value, str):
            raise ValueError(f'must be "auto" or a number of processes (got {value!r})')
        return count(value)

    return convert


def daemon_table(base_dir: Path) -> Table[DaemonConfig]:
    """The `[daemon]` spec."""
    return Table(
        fields=(
            Field("state_dir", optional(path_field(base_dir)), None,
                  "state database and stored tokens"),
            Field("control_socket", optional(path_field(base_dir)), None,
                  "unix socket `ilyd ctl` talks to"),
            Field("log_format", choice("auto", "json", "console"), "auto"),
            Field("log_level", choice("debug", "info", "warning", "error"), "info"),
            Field("processes", _processes(), None,
                  'worker processes the orgs are shared over; "auto": by orgs and CPUs'),
            Field("degraded_after", number(0, 3600), 30.0,
                  "seconds a running org's problem lasts before it shows degraded"),
            Field("lookup_threads", integer(1, 1024), 32,
                  "threads per daemon process for every org's blocking enrichment lookups"
                  " (a vendor's HTTP API, DNS); each org has at most `workers` in flight"),
            Field("cpu_pinning", boolean(), True,
                  "each process that runs orgs keeps its threads on one CPU (a worker: the"
                  " CPU of its index); false: on every CPU the process may use"),
        ),
        build=lambda state_dir, control_socket, **rest: DaemonConfig(
            state_dir=state_dir or default_state_dir(base_dir),
            control_socket=control_socket or default_control_socket(base_dir),
            **rest,
        ),
    )


def _check_metrics(values: dict[str, Any], path: str, problems: Problems) -> None:
    listen = values["listen"]
    if listen is not None and not values["allow_remote"] and not is_loopback_host(listen[0]):
        problems.add(
            f"{path}.listen",
            f"{listen[0]} is not a loopback address; metrics carry org names, so bind"
            " 127.0.0.1 and scrape through a proxy, or set allow_remote = true",
        )


METRICS_TABLE: Table[MetricsConfig] = Table(
    fields=(
        Field("listen", optional(listen_address()), ("127.0.0.1", 9464),
              "HOST:PORT of the /metrics endpoint; empty disables it"),
        Field("per_org", boolean(), True, "export the per-org health series"),
        Field("allow_remote", boolean(), False, "allow a non-loopback listen address"),
    ),
    build=lambda listen, per_org, allow_remote: MetricsConfig(listen=listen, per_org=per_org),
    check=_check_metrics,
)


def _api_version() -> Any:
    def convert(value: Any) -> str:
        text = string()(value)
        major, dot, minor = text.partition(".")
        if not (dot and major.isdigit() and minor == "0"):
            raise ValueError(f"must look like '62.0' (got {text!r})")
        return text

    return convert


DEFAULTS_FIELDS: tuple[Field, ...] = (
    Field("api_version", _api_version(), DEFAULT_API_VERSION, "Salesforce REST API version",
          inherit=True),
    Field("objects", string_list(SUPPORTED_OBJECTS), SUPPORTED_OBJECTS,
          "sObjects to enrich", inherit=True),
    Field("workers", integer(1, 64), 4,
          "lookups in flight per org, on the process's [daemon] lookup_threads", inherit=True),
    Field("poll_interval", number(5, 3600), 30.0,
          "seconds between SOQL polls when streaming is unavailable", inherit=True),
    Field("api_budget_ratio", number(0.01, 1.0), 0.5,
          "share of the org's daily API allowance ilyd may use", inherit=True),
    Field("auto_provision", boolean(), True,
          "create missing Ily fields, permission set and PushTopics at start", inherit=True),
    Field("auto_layout", boolean(), False,
          "add the 'Ily Enrichment' section to the Account and Lead page layouts the "
          "profiles use when provisioning (page layouts are the admin's: off by default)",
          inherit=True),
    Field("reconcile_interval", number(0, 86400), 900.0,
          "seconds between reconciliation sweeps (one SOQL query per object for changed "
          "records no event brought); 0 turns them off", inherit=True),
    Field("recheck_within", number(1, 86400), 300.0,
          "a warm start decides from the facts its last checks stored and checks the org "
          "again at a random moment within this many seconds", inherit=True),
    Field("source", choice("auto", "cdc", "pushtopic", "polling"), "auto",
          "where changes come from: auto (Change Data Capture when the org already "
          "publishes Account or Lead change events, else PushTopics, else polling), cdc, "
          "pushtopic or polling", inherit=True),
    Field("call_client", string(), "ilyd",
          "client name every API call carries (Sforce-Call-Options: client=NAME); change "
          "events naming it are ilyd's own writes", inherit=True),
    Field("enrich", enrich_settings(), DEFAULT_ENRICH,
          "enrichment sources, overwrite policy, writer window", inherit=True),
)

DEFAULTS_TABLE: Table[DefaultsConfig] = Table(fields=DEFAULTS_FIELDS, build=DefaultsConfig)
