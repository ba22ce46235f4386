"""Configuration: TOML -> validated, frozen dataclasses.

`load_config(path)` is the one entry point. The schema toolkit (`ilyd.config.schema`)
collects every problem with its key path; `ilyd.config.loader.GLOBAL_TABLES` lists the
global tables.
"""

from ilyd.config.loader import load_config
from ilyd.config.model import (
    Config,
    DaemonConfig,
    DefaultsConfig,
    MetricsConfig,
    OrgConfig,
    OrgConfigError,
    OrgName,
)
from ilyd.config.secrets import SecretKind, SecretRef
from ilyd.config.show import render_config

__all__ = [
    "Config",
    "DaemonConfig",
    "DefaultsConfig",
    "MetricsConfig",
    "OrgConfig",
    "OrgConfigError",
    "OrgName",
    "SecretKind",
    "SecretRef",
    "load_config",
    "render_config",
]
