"""Shared by the one-shot org commands (check, connect, fields): find the org's config."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ilyd.config import Config, OrgConfig

EXIT_USAGE = 2
# Salesforce's certificate is not trusted: retrying cannot help, the org's ca_file must
# name the CA that signed it (the same code for every one-shot command).
EXIT_TLS = 6


def load_checked(config_path: str, command: str) -> Config | None:
    """The config, or None after printing each of its problems."""
    from ilyd.config import load_config
    from ilyd.errors import ConfigError

    try:
        return load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"ilyd {command}: {problem}", file=sys.stderr)
        return None


def load_org(config_path: str, name: str, command: str) -> tuple[Config, OrgConfig] | None:
    """The config and the org named `name`, or None after printing why not."""
    config = load_checked(config_path, command)
    if config is None:
        return None
    org = config.org(name)
    if org is None:
        broken = next((e for e in config.org_errors if e.name == name), None)
        if broken is not None:
            for problem in broken.problems:
                print(f"ilyd {command}: {problem}", file=sys.stderr)
        else:
            names = ", ".join(config.org_names()) or "none"
            print(f"ilyd {command}: no org named {name!r} in {config_path} (orgs: {names})",
                  file=sys.stderr)
        return None
    return config, org


def quiet_logging() -> None:
    """One-shot commands print their result on stdout: logs go to stderr, warnings only."""
    from ilyd.daemon.logs import configure_logging

    configure_logging("console", "warning", stream="stderr")
