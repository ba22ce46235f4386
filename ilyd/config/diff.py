"""What a reload changes: orgs added, removed, changed, and settings needing a restart."""

from __future__ import annotations

from dataclasses import dataclass

from ilyd.config.model import Config

# Global settings the running process cannot switch live (sockets and files are open).
_RESTART_ONLY = (
    ("daemon", "state_dir"),
    ("daemon", "control_socket"),
    ("daemon", "log_format"),
    ("daemon", "processes"),
    ("daemon", "lookup_threads"),
    ("daemon", "cpu_pinning"),
    ("metrics", "listen"),
    ("metrics", "per_org"),
)


@dataclass(frozen=True)
class ConfigDiff:
    """The difference between the running config and a new one."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    restart_required: tuple[str, ...]  # "daemon.state_dir"…: kept until the next restart

    def as_dict(self) -> dict[str, list[str]]:
        """JSON-able form."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "restart_required": list(self.restart_required),
        }


def _entries(config: Config) -> dict[str, object]:
    entries: dict[str, object] = {org.name: org for org in config.orgs}
    entries.update({e.name: e.problems for e in config.org_errors})
    return entries


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Compare two configs org by org (an org is changed when any of its settings is)."""
    before, after = _entries(old), _entries(new)
    return ConfigDiff(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        changed=tuple(n for n in after if n in before and before[n] != after[n]),
        restart_required=tuple(
            f"{section}.{key}"
            for section, key in _RESTART_ONLY
            if getattr(getattr(old, section), key) != getattr(getattr(new, section), key)
        ),
    )
