"""Dataset provider settings: where the file is, its format, and the column mapping.

Split from `ilyd.enrich.dataset` (which re-exports everything here) so the settings can
be validated from the config without loading a file.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from ilyd.enrich.fields import DATA_FIELDS
from ilyd.errors import ConfigError

__all__ = [
    "SAMPLE_MAPPING",
    "DatasetFormat",
    "DatasetSettings",
    "check_mapping",
    "sample_dataset_path",
]


class DatasetFormat(StrEnum):
    """File formats the dataset provider reads."""

    CSV = "csv"
    JSONL = "jsonl"
    SQLITE = "sqlite"


_SUFFIXES = {
    ".csv": DatasetFormat.CSV,
    ".jsonl": DatasetFormat.JSONL,
    ".ndjson": DatasetFormat.JSONL,
    ".sqlite": DatasetFormat.SQLITE,
    ".sqlite3": DatasetFormat.SQLITE,
    ".db": DatasetFormat.SQLITE,
}

# The bundled sample's columns, which are also the default mapping.
SAMPLE_MAPPING: Mapping[str, str] = MappingProxyType({
    "company_name": "Ily_Company_Name__c",
    "industry": "Ily_Industry__c",
    "employee_count": "Ily_Employee_Count__c",
    "employee_range": "Ily_Employee_Range__c",
    "country": "Ily_Country__c",
    "cloud_hosting_provider": "Ily_Cloud_Hosting_Provider__c",
    "cdn_provider": "Ily_CDN_Provider__c",
    "dns_provider": "Ily_DNS_Provider__c",
    "email_provider": "Ily_Email_Provider__c",
    "email_security_provider": "Ily_Email_Security_Provider__c",
    "email_sending_services": "Ily_Email_Sending_Services__c",
    "saas_products": "Ily_SaaS_Products__c",
    "technologies": "Ily_Technologies__c",
    "monthly_spend_estimate": "Ily_Monthly_Spend_Estimate__c",
    "traffic_rank": "Ily_Traffic_Rank__c",
})


def sample_dataset_path() -> Path:
    """Where the bundled synthetic sample (`sample_companies.csv`) is installed."""
    return Path(str(resources.files("ilyd.enrich.data").joinpath("sample_companies.csv")))


@dataclass(frozen=True)
class DatasetSettings:
    """Where the dataset is and how its columns map to Ily fields."""

    path: Path
    name: str = "dataset"
    format: DatasetFormat | None = None  # None: from the file name's suffix
    domain_column: str = "domain"
    mapping: Mapping[str, str] = field(default_factory=lambda: SAMPLE_MAPPING)
    table: str = "companies"  # SQLite only
    # The bundled sample is made-up companies: written into a real org it would replace
    # real values with fiction, so it serves devorg orgs unless this is set on purpose.
    allow_real_org: bool = False

    @property
    def is_sample(self) -> bool:
        """Whether this is the bundled synthetic sample (`path = "@sample"`)."""
        return str(self.path) == "@sample" or self.path == sample_dataset_path()

    @property
    def resolved_format(self) -> DatasetFormat:
        """The explicit format, else the one the suffix names; ConfigError when neither."""
        if self.format is not None:
            return self.format
        found = _SUFFIXES.get(self.path.suffix.lower())
        if found is None:
            raise ConfigError(
                f"dataset {self.path}: cannot tell the format from the suffix "
                f"{self.path.suffix!r}; name it .csv, .jsonl or .sqlite, or set format"
            )
        return found

    @classmethod
    def from_config(
        cls, raw: Mapping[str, object], *, key: str = "provider", base_dir: Path | None = None
    ) -> DatasetSettings:
        """Settings from a config table, reporting every problem with its key path.

        Keys: `path` (required; relative to `base_dir`; `"@sample"` is the bundled
        sample), `name`, `format`, `domain_column`, `table`, `mapping` (column → Ily
        field API name; default: the sample's columns), `allow_real_org` (the sample in
        an org that is not a devorg org). `type` is the caller's.
        """
        known = {"type", "path", "name", "format", "domain_column", "table", "mapping",
                 "allow_real_org"}
        problems = []
        for name in raw:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(f"{key}.{name}: unknown key{more}")
        strings = {}
        for name, default in (("path", None), ("name", "dataset"), ("format", None),
                              ("domain_column", "domain"), ("table", "companies")):
            value = raw.get(name, default)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                problems.append(f"{key}.{name}: must be a non-empty string")
                value = default
            strings[name] = value
        if strings["path"] is None:
            problems.append(f"{key}.path: missing; name the dataset file (or \"@sample\")")
        allow_real_org = raw.get("allow_real_org", False)
        if not isinstance(allow_real_org, bool):
            problems.append(f"{key}.allow_real_org: must be true or false")
        fmt = None
        if strings["format"] is not None:
            try:
                fmt = DatasetFormat(str(strings["format"]).lower())
            except ValueError:
                problems.append(f"{key}.format: must be one of csv, jsonl, sqlite")
        mapping_raw = raw.get("mapping", SAMPLE_MAPPING)
        mapping: dict[str, str] = {}
        if not isinstance(mapping_raw, Mapping):
            problems.append(f"{key}.mapping: must be a table of column = \"Ily_…__c\"")
        else:
            for column, target in mapping_raw.items():
                if isinstance(target, str):
                    mapping[str(column)] = target
                else:
                    problems.append(f"{key}.mapping.{column}: must be an Ily field API name")
        if problems:
            raise ConfigError(problems)
        path_text = str(strings["path"])
        if path_text == "@sample":
            path = sample_dataset_path()
        else:
            path = Path(path_text).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
        settings = cls(path=path, name=str(strings["name"]), format=fmt,
                       domain_column=str(strings["domain_column"]), table=str(strings["table"]),
                       mapping=MappingProxyType(mapping), allow_real_org=allow_real_org is True)
        mapping_problems = check_mapping(settings)
        if mapping_problems:
            raise ConfigError([f"{key}.{p.removeprefix('dataset ')}" for p in mapping_problems])
        return settings


def check_mapping(settings: DatasetSettings) -> list[str]:
    """Every problem with `settings.mapping` (targets must be Ily data fields)."""
    allowed = {f.api_name for f in DATA_FIELDS}
    problems = []
    for column, target in settings.mapping.items():
        if target not in allowed:
            hint = difflib.get_close_matches(target, sorted(allowed), n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(
                f"dataset mapping.{column}: {target!r} is not an Ily data field{more}"
            )
    if not settings.mapping:
        problems.append("dataset mapping: maps no column to an Ily field")
    return problems
