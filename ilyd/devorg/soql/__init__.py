"""SOQL for devorg: a real parser (``parse``) and a streaming evaluator (``execute``).

Errors are ``SoqlError`` with Salesforce's error codes and wording, caret block included.
The package knows nothing of devorg's storage: the host passes a ``Schema`` (what the
user may see) and a ``DataSource`` (records as mappings).
"""

from ilyd.devorg.soql.errors import SoqlError
from ilyd.devorg.soql.executor import execute
from ilyd.devorg.soql.nodes import Query
from ilyd.devorg.soql.parser import parse
from ilyd.devorg.soql.schema import DataSource, FieldInfo, QueryResult, Schema

__all__ = [
    "DataSource",
    "FieldInfo",
    "Query",
    "QueryResult",
    "Schema",
    "SoqlError",
    "execute",
    "parse",
]
