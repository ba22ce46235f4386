"""The config loader against generated TOML: every document either loads or raises a
ConfigError whose problems each name a key path; no other exception escapes."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.config import load_config
from ilyd.config.loader import GLOBAL_TABLES
from ilyd.config.org import org_table
from ilyd.errors import ConfigError
from tests.fuzz.settings import PURE

# Keys the schema knows, so generated tables reach the converters and not only the
# unknown-key check.
KNOWN_KEYS = sorted(
    {name for factory in GLOBAL_TABLES.values() for name in factory(Path("/")).names()}
    | set(org_table(Path("/c.toml"), Path("/s")).names())
    | {"type", "path", "url", "method", "headers", "body", "fields", "results_path",
       "result_path", "match_path", "status_path", "nameservers", "port", "provider",
       "overwrite", "writer_window", "scope", "Lead", "Account", "Ily_Industry__c",
       "timeout", "batch", "auth_header", "requests_per_second", "max_domains"}
)
CHOICES = ["dataset", "http", "dns", "@sample", "client_credentials", "jwt", "refresh_token",
           "password", "pushtopic", "cdc", "polling", "auto", "if_blank", "always",
           "127.0.0.1:0", "https://x.my.salesforce.com", "Lead", "Account", "json", "debug",
           "15m", "0", "-1", "", "\x00", "é", "1e309"]

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=8))
scalars = st.one_of(
    st.sampled_from(CHOICES), st.text(max_size=20), st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True), st.datetimes(), st.dates(), st.times(),
    st.datetimes(timezones=st.just(dt.UTC)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=12,
)
tables = st.dictionaries(keys, values, max_size=8)
documents = st.fixed_dictionaries(
    {},
    optional={"daemon": tables, "metrics": tables, "defaults": tables,
              "org": st.lists(tables, max_size=3) | values},
).flatmap(lambda doc: st.dictionaries(keys, values, max_size=2).map(lambda extra: {**extra,
                                                                                     **doc}))

# "key.path: message", each key bare or quoted as TOML writes it, arrays indexed.
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*")(?:\[\d+\])*'
KEY_PATH = re.compile(rf"{_KEY}(?:\.{_KEY})*: \S")

_DIR = Path(tempfile.mkdtemp(prefix="ilyd-fuzz-config-"))


def problems_of(text: bytes) -> list[str]:
    """Load `text` as a config file: [] when it loads, else the ConfigError's problems
    (any other exception fails the test)."""
    path = _DIR / "ilyd.toml"
    path.write_bytes(text)
    try:
        load_config(path)
    except ConfigError as exc:
        return exc.problems or ["<a ConfigError listing no problem>"]
    return []


@given(documents)
@PURE
def test_any_toml_document_loads_or_raises_a_config_error_with_key_paths(doc):
    for problem in problems_of(tomli_w.dumps(doc).encode()):
        assert KEY_PATH.match(problem), f"no key path in {problem!r}"


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"\x80")  # not UTF-8
@example("[daemon]\nstate_dir = \"\u00e9\x80\"\n".encode("latin-1"))
@PURE
def test_any_bytes_as_a_config_file_load_or_raise_a_config_error(data):
    assert all(isinstance(p, str) and p.strip() for p in problems_of(data))
