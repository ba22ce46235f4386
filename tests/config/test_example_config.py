"""config/ilyd.toml, the file admins start from, shows every key the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

from ilyd.config.enrich import _TABLE as ENRICH_TABLE
from ilyd.config.enrich_http import http_table
from ilyd.config.enrich_providers import _dns_table
from ilyd.config.org import org_table
from ilyd.config.tables import METRICS_TABLE, daemon_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "ilyd.toml"

# The dataset provider checks its keys itself (DatasetSettings.from_config), not through
# a Table; these are the keys it accepts.
DATASET_KEYS = ("path", "name", "format", "domain_column", "table", "mapping",
                "allow_real_org", "cache_ttl", "negative_cache_ttl")


def _shown(text: str, key: str) -> bool:
    """Whether the example sets or shows `key` (`key = …`, commented out or not, or as a
    `[….key]` table header)."""
    return bool(re.search(rf"(^|[\s#({{;,]){re.escape(key)}\s*=", text, flags=re.MULTILINE)
                or re.search(rf"\.{re.escape(key)}\]", text))


def test_the_example_config_shows_every_key_the_code_accepts(tmp_path: Path) -> None:
    tables = {
        "daemon": daemon_table(tmp_path),
        "metrics": METRICS_TABLE,
        "org": org_table(tmp_path / "ilyd.toml", tmp_path),
        "enrich": ENRICH_TABLE,
        "http provider": http_table(),
        "dns provider": _dns_table(),
    }
    keys = {f"{where}.{field.name}": field.name
            for where, table in tables.items() for field in table.fields}
    keys.update({f"dataset provider.{key}": key for key in DATASET_KEYS})
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = sorted(path for path, key in keys.items() if not _shown(text, key))
    assert not missing, f"config/ilyd.toml does not show: {', '.join(missing)}"
