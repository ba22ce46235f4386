"""`[org.scope]`: which records of an object ilyd enriches, as a SOQL condition.

```toml
[org.scope]
Account = "BillingCountry IN ('US','CA') AND Type != 'Competitor'"
Lead = "LeadSource != 'Partner'"
```

The condition is the admin's own SOQL, trusted as the config file is: ilyd puts it, in
parentheses and unchanged, into the queries that read the records (the writer's batched
read before a write, the resync's read) — nothing of a record or an event is ever put
into it. Salesforce itself validates it when the org starts (`ilyd.pipeline.scope`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ilyd.config.schema import NestedProblemsError, join_path, type_name

__all__ = ["SCOPED_OBJECTS", "scope_table"]

SCOPED_OBJECTS = ("Account", "Lead")


def scope_table() -> Any:
    """Converter of `[org.scope]`: object = "SOQL condition" → sorted pairs."""

    def convert(value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table of object = \"SOQL condition\""
                             f" (got {type_name(value)})")
        problems = []
        pairs = []
        for sobject, condition in value.items():
            key = join_path("", sobject)  # quoted when TOML would quote it (e.g. "")
            if sobject not in SCOPED_OBJECTS:
                problems.append(f"{key}: must be one of {', '.join(SCOPED_OBJECTS)}")
            elif not isinstance(condition, str) or not condition.strip():
                problems.append(f"{key}: must be a non-empty SOQL condition, e.g."
                                " \"BillingCountry = 'US'\"")
            else:
                pairs.append((sobject, condition.strip()))
        if problems:
            raise NestedProblemsError(problems)
        return tuple(sorted(pairs))

    return convert
