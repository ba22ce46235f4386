"""The preflight line for the org's enrichment source: the step of the installation guide
where the admin chooses where company values come from.

Its input is the org's config, not the org's facts, so it is kept apart from `checks.py`;
the rule itself (the bundled sample serves devorg orgs only) is `sample_refusal`, the one
the daemon applies when the org starts.
"""

from __future__ import annotations

from ilyd.config import OrgConfig
from ilyd.enrich.dataset_settings import DatasetSettings
from ilyd.pipeline.providers import is_devorg_org, sample_refusal
from ilyd.provision.checks import CheckResult, Status

__all__ = ["STEP", "source_check"]

STEP = "enrichment source"


def _describe(org: OrgConfig) -> str:
    names = []
    for spec in org.enrich.providers:
        settings = spec.settings
        if isinstance(settings, DatasetSettings):
            where = "the bundled synthetic sample" if settings.is_sample else str(settings.path)
            names.append(f"{spec.name} ({where})")
        else:
            names.append(f"{spec.name} ({spec.type})")
    return ", ".join(names)


def source_check(org: OrgConfig) -> CheckResult:
    """PASS for a chosen source; FAIL when the daemon would refuse the org for it; WARN
    when the sample is allowed in a real org on purpose."""
    refusal = sample_refusal(org)
    if refusal is not None:
        return CheckResult(
            STEP, Status.FAIL,
            f"{_describe(org)}: made-up companies, and this org is on Salesforce",
            "the daemon does not start this org: the sample would write made-up values"
            " (or \"Not Found\") into real records",
            "choose your enrichment source in [defaults.enrich] or [org.enrich] (your"
            " dataset file, a vendor's HTTP API, DNS, or a chain; docs/install.md, \"Choose"
            " your enrichment source\"); or allow_real_org = true on the sample provider")
    allowed = [s.name for s in org.enrich.providers if isinstance(s.settings, DatasetSettings)
               and s.settings.is_sample and s.settings.allow_real_org]
    if allowed and not is_devorg_org(org.login_url):
        return CheckResult(STEP, Status.WARN,
                           f"{_describe(org)}, allowed here (allow_real_org = true)",
                           "made-up values are written into this org's records",
                           "choose your enrichment source (docs/install.md) unless this org"
                           " is a throw-away demonstration")
    return CheckResult(STEP, Status.PASS, _describe(org))

