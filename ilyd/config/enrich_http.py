"""`type = "http"` provider tables: a vendor's API, one domain (or a batch) per call.

Checks the URL template (https, or http on loopback), the response paths, the Ily field
map, the JSON body template, extra headers, the batch endpoint, and where the API key goes
(`auth_header` / `auth_query`) and comes from (`secret_file` / `secret_env` /
`secret_credential` — never inline: secret-looking keys and credential headers are
refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ilyd.config.provider_spec import ProviderSpec, cache_fields
from ilyd.config.schema import (
    Field,
    NestedProblemsError,
    Problems,
    Table,
    choice,
    integer,
    is_loopback_host,
    join_path,
    number,
    optional,
    string,
    type_name,
    unknown_key_message,
)
from ilyd.config.secrets import SecretKind, SecretRef
from ilyd.enrich.fields import DATA_FIELDS, by_api_name
from ilyd.enrich.http_paths import parse_path
from ilyd.enrich.http_provider import HttpBatchSettings, HttpSettings
from ilyd.errors import ConfigError

_INLINE_FIX = (
    "secrets are never written inline in the config: put the API key in a file readable"
    " only by ilyd (chmod 600) and set secret_file, or use secret_credential"
    " (systemd LoadCredential=) or secret_env"
)
_FORBIDDEN = {key: _INLINE_FIX for key in
              ("secret", "api_key", "apikey", "key", "token", "password", "client_secret")}
# Header names that carry credentials: the value would be an inline secret.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key",
                                 "api-key", "apikey", "x-auth-token", "cookie"})
_SECRET_KINDS = (SecretKind.FILE, SecretKind.CREDENTIAL, SecretKind.ENV)


def _url(value: Any) -> str:
    text = string()(value)
    parts = urlsplit(text.replace("{domain}", "x").replace("{domains}", "x"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"must be an https:// URL (got {text!r})")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"must use https:// (got {text!r}); plain http is only allowed on"
                         " loopback, for local test servers")
    return text


def _response_path(value: Any) -> str:
    text = string(empty=True)(value)
    try:
        parse_path(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    return text


def _body(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table, the JSON body template (got {type_name(value)})")
    return MappingProxyType(dict(value))


def _headers(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"must be a table of header = \"value\" (got {type_name(value)})")
    problems = [f"{name}: carries a credential, which must not be inline; name the header in"
                " auth_header and point secret_file (or secret_env / secret_credential) at"
                " the value" for name in value if name.lower() in _CREDENTIAL_HEADERS]
    if problems:
        raise NestedProblemsError(problems)
    return MappingProxyType(dict(value))


def _fields(value: Any) -> Mapping[str, str]:
    """Ily field API name = response path (validated against the field catalogue)."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError("must be a non-empty table of Ily field = \"response.path\", e.g."
                         " { Ily_Company_Name__c = \"name\" }")
    known = sorted(by_api_name())
    data = {f.api_name for f in DATA_FIELDS}
    problems: list[str] = []
    fields: dict[str, str] = {}
    for name, path in value.items():
        if name not in known:
            problems.append(f"{name}: {unknown_key_message(name, known)}"
                            .replace("unknown key", "not an Ily field"))
        elif name not in data:
            problems.append(f"{name}: is written by ilyd itself; map an Ily data field")
        else:
            try:
                fields[name] = _response_path(path)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
    if problems:
        raise NestedProblemsError(problems)
    return MappingProxyType(fields)


def _batch(value: Any) -> HttpBatchSettings:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table (got {type_name(value)})")
    table: Table[HttpBatchSettings] = Table(
        fields=(
            Field("url", _url),
            Field("max_domains", integer(1, 1000), 25),
            Field("method", choice("GET", "POST"), "GET"),
            Field("body", optional(_body), None),
            Field("results_path", _response_path, ""),
            Field("match_path", _response_path, "domain"),
        ),
        build=HttpBatchSettings,
        check=_check_batch,
    )
    problems = Problems()
    built = table.parse(value, "", problems)
    if built is None:
        raise NestedProblemsError(problems.items)
    return built


def _check_batch(values: dict[str, Any], path: str, problems: Problems) -> None:
    if values["method"] == "GET" and "{domains}" not in values["url"]:
        problems.add(join_path(path, "url"),
                     "must contain {domains} (the comma-joined domains) for a GET batch")
    if values["method"] == "POST" and values["body"] is None:
        problems.add(join_path(path, "body"),
                     "a POST batch needs a body template with \"{domains}\"")


def _check_http(values: dict[str, Any], path: str, problems: Problems) -> None:
    refs = [(kind, values[f"secret_{kind}"]) for kind in _SECRET_KINDS
            if values[f"secret_{kind}"] is not None]
    if len(refs) > 1:
        problems.add(path, "set only one of " + ", ".join(f"secret_{k}" for k, _ in refs))
    located = values["auth_header"] or values["auth_query"]
    if values["auth_header"] and values["auth_query"]:
        problems.add(path, "set auth_header or auth_query, not both")
    if located and not refs:
        problems.add(path, "auth_header / auth_query needs the key's location: set secret_file"
                     " (or secret_credential / secret_env)")
    if refs and not located:
        problems.add(path, "a secret is set but not where it goes: set auth_header (e.g."
                     " \"Authorization\") or auth_query (e.g. \"api_key\")")
    if values["method"] == "GET" and "{domain}" not in values["url"]:
        problems.add(f"{path}.url", "must contain {domain} (or use method = \"POST\" with a"
                     " body template)")
    if values["method"] == "POST" and values["body"] is None:
        problems.add(f"{path}.body", "method = \"POST\" needs a body template, e.g."
                     " { domain = \"{domain}\" }")
    if values["method"] == "GET" and values["body"] is not None:
        problems.add(f"{path}.body", "only sent with method = \"POST\"")
    values["_secret"] = (SecretRef(refs[0][0], str(refs[0][1]),
                                   f"enrich.provider{path}.secret_{refs[0][0]}")
                         if len(refs) == 1 else None)


def _build_http(**v: Any) -> ProviderSpec:
    settings = HttpSettings(
        name=v["name"], url=v["url"], fields=v["fields"], method=v["method"], body=v["body"],
        result_path=v["result_path"], status_path=v["status_path"],
        auth_header=v["auth_header"], auth_query=v["auth_query"],
        auth_prefix=v["auth_prefix"], headers=v["headers"], timeout_seconds=v["timeout"],
        requests_per_second=v["requests_per_second"], max_concurrency=v["max_concurrency"],
        max_attempts=v["max_attempts"], batch=v["batch"],
    )
    return ProviderSpec("http", settings, v["cache_ttl"], v["negative_cache_ttl"],
                        v["_secret"])



def http_table() -> Table[ProviderSpec]:
    """The schema of one `type = "http"` provider table; it builds a ProviderSpec."""
    def build(**values: Any) -> ProviderSpec:
        values.pop("type")
        for kind in _SECRET_KINDS:
            values.pop(f"secret_{kind}")
        return _build_http(**values)

    return Table(
        fields=(
            Field("type", choice("http")),
            Field("name", string(), "http", "metrics label, Source value and cache key"),
            Field("url", _url, doc="URL template with {domain}"),
            Field("method", choice("GET", "POST"), "GET"),
            Field("body", optional(_body), None, "JSON body template (POST)"),
            Field("fields", _fields, doc="Ily field API name = response path"),
            Field("result_path", _response_path, ""),
            Field("status_path", _response_path, "status"),
            Field("auth_header", optional(string()), None),
            Field("auth_query", optional(string()), None),
            Field("auth_prefix", string(empty=True), ""),
            *(Field(f"secret_{kind}", optional(string()), None) for kind in _SECRET_KINDS),
            Field("headers", _headers, MappingProxyType({})),
            Field("timeout", number(0.1, 300), 10.0, "seconds per request"),
            Field("requests_per_second", number(0.01, 10_000), 5.0),
            Field("max_concurrency", integer(1, 256), 4),
            Field("max_attempts", integer(1, 10), 4, "tries of a 5xx / timeout"),
            Field("batch", optional(_batch), None, "an endpoint taking N domains per call"),
            *cache_fields("http"),
        ),
        build=build,
        forbidden=_FORBIDDEN,
        check=_check_http,
    )
