"""The DNS signature table: which DNS evidence means which product, and in which Ily field.

The table is data (`data/signatures/*.toml`), written by us from vendor documentation;
this module loads and checks it and matches DNS records against it. Host names match
by whole labels (`x.pphosted.com` matches `pphosted.com`, `xpphosted.com` does not), so
a lookalike domain cannot pass for a vendor.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from ilyd.errors import ConfigError


class Category(StrEnum):
    """What a product is, which decides the Ily field it is written to."""

    EMAIL_PROVIDER = "email_provider"
    EMAIL_SECURITY = "email_security"
    EMAIL_SENDING = "email_sending"
    DNS = "dns"
    CDN = "cdn"
    HOSTING = "hosting"
    SAAS = "saas"


class RecordKind(StrEnum):
    """Which DNS evidence a signature looks at (see the data file's header)."""

    MX = "mx"
    SPF = "spf"
    NS = "ns"
    CNAME = "cname"
    PTR = "ptr"
    TXT = "txt"
    ADDRESS = "address"


CATEGORY_FIELDS: Mapping[Category, str] = {
    Category.EMAIL_PROVIDER: "Ily_Email_Provider__c",
    Category.EMAIL_SECURITY: "Ily_Email_Security_Provider__c",
    Category.EMAIL_SENDING: "Ily_Email_Sending_Services__c",
    Category.DNS: "Ily_DNS_Provider__c",
    Category.CDN: "Ily_CDN_Provider__c",
    Category.HOSTING: "Ily_Cloud_Hosting_Provider__c",
    Category.SAAS: "Ily_SaaS_Products__c",
}


@dataclass(frozen=True)
class Signature:
    """One row of the table."""

    product: str
    category: Category
    record: RecordKind
    source: str
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    verified: bool = False


@dataclass(frozen=True)
class Match:
    """A record that matched a signature: the evidence for one product."""

    signature: Signature
    value: str

    @property
    def product(self) -> str:
        """The product this evidence names."""
        return self.signature.product

    @property
    def category(self) -> Category:
        """The product's category (which Ily field it goes to)."""
        return self.signature.category

    def describe(self) -> str:
        """One evidence line, e.g. `MX smtp.google.com -> Google Workspace (email_provider)`."""
        sig = self.signature
        kind = sig.record.upper()
        if sig.record is RecordKind.ADDRESS:
            kind = "AAAA" if ":" in self.value else "A"
        return f"{kind} {self.value} -> {sig.product} ({sig.category})"


_BUNDLED = "signatures"


def load_signatures(path: Path | None = None) -> SignatureTable:
    """Load and check the table: the bundled one unless `path` is given, a TOML file or a
    folder whose *.toml files, read in name order, together make the table.

    Every bad row is reported at once, with its index, as a ConfigError.
    """
    rows: list[object] = []
    where: list[str] = []
    try:
        if path is None:
            folder = resources.files("ilyd.enrich").joinpath("data", _BUNDLED)
            files = [(f"bundled {_BUNDLED}/{f.name}", f) for f in
                     sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".toml")]
        elif Path(path).is_dir():
            files = [(str(f), f) for f in sorted(Path(path).glob("*.toml"))]
        else:
            files = [(str(path), Path(path))]
        for name, file in files:
            found = tomllib.loads(file.read_text("utf-8")).get("signature")
            if not isinstance(found, list) or not found:
                raise ConfigError(f"{name}: no [[signature]] rows")
            rows.extend(found)
            where.extend(f"{name} signature[{i}]" for i in range(len(found)))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the DNS signature table {path or _BUNDLED}: {exc}") from exc
    problems: list[str] = []
    signatures = [s for row, at in zip(rows, where, strict=True)
                  if (s := _row(row, at, problems)) is not None]
    if problems:
        raise ConfigError(problems)
    return SignatureTable(signatures)


def _row(row: object, where: str, problems: list[str]) -> Signature | None:
    if not isinstance(row, dict):
        problems.append(f"{where}: not a table")
        return None
    before = len(problems)
    unknown = set(row) - {"product", "category", "record", "source", "suffix", "prefix",
                          "regex", "cidr", "verified"}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}")
    product = row.get("product")
    if not isinstance(product, str) or not product.strip():
        problems.append(f"{where}: product must be a non-empty string")
    source = row.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        problems.append(f"{where}: source must be the https:// URL of the vendor's documentation")
    try:
        category = Category(row.get("category"))
    except ValueError:
        problems.append(f"{where}: category must be one of {[c.value for c in Category]}")
    try:
        record = RecordKind(row.get("record"))
    except ValueError:
        problems.append(f"{where}: record must be one of {[r.value for r in RecordKind]}")
    kinds = [k for k in ("suffix", "prefix", "regex", "cidr") if k in row]
    if len(kinds) != 1:
        problems.append(f"{where}: give exactly one of suffix, prefix, regex or cidr")
    networks = []
    for text in _strings(row.get("cidr", ["0.0.0.0/32"]), f"{where}: cidr", problems):
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            problems.append(f"{where}: cidr {exc}")
    if ("cidr" in row) != (row.get("record") == RecordKind.ADDRESS):
        problems.append(f"{where}: cidr goes with record = \"address\" and only with it")
    suffixes = _strings(row.get("suffix", []), f"{where}: suffix", problems)
    prefixes = _strings(row.get("prefix", []), f"{where}: prefix", problems)
    pattern = None
    if "regex" in row:
        try:
            pattern = re.compile(str(row["regex"]), re.IGNORECASE)
        except re.error as exc:
            problems.append(f"{where}: regex does not compile: {exc}")
    if len(problems) > before:
        return None
    return Signature(
        product=product.strip(), category=category, record=record, source=source,
        suffixes=tuple(s.lower().strip(".") for s in suffixes),
        prefixes=tuple(p.lower() for p in prefixes), regex=pattern,
        networks=tuple(networks) if "cidr" in row else (),
        verified=bool(row.get("verified", False)),
    )


def _strings(value: object, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where} must be a list of non-empty strings")
        return []
    return value


class SignatureTable:
    """The loaded table, indexed for matching."""

    def __init__(self, signatures: Iterable[Signature]) -> None:
        self.signatures = tuple(signatures)
        self._suffix: dict[tuple[RecordKind, str], list[Signature]] = {}
        self._others: dict[RecordKind, list[Signature]] = {}
        for sig in self.signatures:
            for suffix in sig.suffixes:
                self._suffix.setdefault((sig.record, suffix), []).append(sig)
            if sig.prefixes or sig.regex is not None or sig.networks:
                self._others.setdefault(sig.record, []).append(sig)

    def match(self, record: RecordKind, value: str) -> list[Match]:
        """Every signature of this record kind the value matches."""
        found: list[Match] = []
        if record is RecordKind.ADDRESS:
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                return found
            found.extend(Match(sig, str(address)) for sig in self._others.get(record, ())
                         if any(address in network for network in sig.networks))
            return found
        if record is RecordKind.TXT:
            lowered = value.lower()
            found.extend(Match(sig, value) for sig in self._others.get(record, ())
                         if any(lowered.startswith(p) for p in sig.prefixes))
            return found
        host = value.lower().rstrip(".")
        labels = host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            found.extend(Match(s, host) for s in self._suffix.get((record, suffix), ()))
        found.extend(Match(sig, host) for sig in self._others.get(record, ())
                     if sig.regex is not None and sig.regex.fullmatch(host))
        return found
