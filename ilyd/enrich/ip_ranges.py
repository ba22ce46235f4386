"""Which CDN or cloud publishes an IP address among its ranges, for DNS technographics.

Many sites point the apex or www straight at a CDN's or a cloud's addresses, with no
CNAME and no telling reverse name; the providers' published ranges are then the only
evidence. They ship as data (`data/ip_ranges_*.txt`, one CIDR a line after a header that
names the product, its category, the vendor's source URL and the date read), refreshed by
`scripts/refresh_ip_ranges.py`.

Lookups go through a multibit trie (8-bit strides, prefixes expanded within their
last stride): at most 4 dictionary steps for IPv4 and 16 for IPv6, so a few
microseconds per address. The longest matching prefix wins, as in routing; at equal
length a CDN's range wins over a cloud's, since CDN ranges are carved out of clouds'.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ilyd.enrich.signatures import Category
from ilyd.errors import ConfigError

_PREFIX = "ip_ranges_"
_HEADER_KEYS = ("product", "category", "source", "read")


@dataclass(frozen=True)
class RangeList:
    """One provider's published ranges, as read from its data file."""

    product: str
    category: Category
    sources: tuple[str, ...]
    read: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    name: str = ""


@dataclass(frozen=True)
class RangeMatch:
    """An address inside a provider's published range: the evidence for one product."""

    product: str
    category: Category
    address: str
    network: str

    def describe(self) -> str:
        """One evidence line, e.g. `A 104.16.1.1 in Cloudflare's published ranges …`."""
        owner = f"{self.product}'" if self.product.endswith("s") else f"{self.product}'s"
        record = "AAAA" if ":" in self.address else "A"
        return (f"{record} {self.address} in {owner} published ranges ({self.network}) "
                f"-> {self.product} ({self.category})")


def parse_range_file(text: str, where: str) -> RangeList:
    """Read one data file; a ConfigError names every problem."""
    header: dict[str, list[str]] = {}
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() in _HEADER_KEYS:
                header.setdefault(key.strip(), []).append(value.strip())
            continue
        try:
            networks.append(ipaddress.ip_network(line, strict=True))
        except ValueError as exc:
            problems.append(f"{where} line {number}: {exc}")
    for key in _HEADER_KEYS:
        if not header.get(key):
            problems.append(f"{where}: header line '# {key}: …' is missing")
    if any(not s.startswith("https://") for s in header.get("source", [])):
        problems.append(f"{where}: each source must be the vendor's https:// URL")
    try:
        category = Category(header.get("category", [""])[0])
    except ValueError:
        problems.append(f"{where}: category must be one of {[c.value for c in Category]}")
    if not networks:
        problems.append(f"{where}: no ranges")
    if problems:
        raise ConfigError(problems)
    return RangeList(product=header["product"][0], category=category,
                     sources=tuple(header["source"]), read=header["read"][0],
                     networks=tuple(networks), name=where)


def bundled_range_files() -> list[tuple[str, str]]:
    """(file name, text) of every bundled range file, in name order."""
    data = resources.files("ilyd.enrich").joinpath("data")
    return sorted((entry.name, entry.read_text("utf-8")) for entry in data.iterdir()
                  if entry.name.startswith(_PREFIX) and entry.name.endswith(".txt"))


class _Slot:
    """One byte value in a trie node: the best prefix ending in it and the next node."""

    __slots__ = ("child", "length", "value")

    def __init__(self) -> None:
        self.value: tuple[RangeList, str] | None = None
        self.length = -1
        self.child: dict[int, _Slot] | None = None


class IpRanges:
    """Published ranges indexed for longest-prefix lookup."""

    def __init__(self, lists: Iterable[RangeList]) -> None:
        self.lists = tuple(lists)
        self._roots: dict[int, dict[int, _Slot]] = {4: {}, 6: {}}
        # CDN lists are inserted last, so at equal length they win over a cloud's.
        ordered = sorted(self.lists, key=lambda r: r.category is Category.CDN)
        for ranges in ordered:
            for network in ranges.networks:
                self._insert(network, ranges)

    def __len__(self) -> int:
        return sum(len(r.networks) for r in self.lists)

    def _insert(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network,
                ranges: RangeList) -> None:
        length = network.prefixlen
        packed = network.network_address.packed
        node = self._roots[network.version]
        full, rest = divmod(length, 8)
        if length == 0:
            raise ConfigError(f"{ranges.name}: {network} covers every address")
        value = (ranges, str(network))
        for i in range(full):
            slot = node.setdefault(packed[i], _Slot())
            if i == full - 1 and rest == 0:
                _claim(slot, value, length)
                return
            if slot.child is None:
                slot.child = {}
            node = slot.child
        # The last, partial byte: claim every byte value the prefix's top bits allow.
        base = packed[full] & (0xFF << (8 - rest)) & 0xFF
        for byte in range(base, base + (1 << (8 - rest))):
            _claim(node.setdefault(byte, _Slot()), value, length)

    def lookup(self, address: str) -> RangeMatch | None:
        """The published range holding `address` (longest prefix), or None."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        node: dict[int, _Slot] | None = self._roots[parsed.version]
        best: tuple[RangeList, str] | None = None
        for byte in parsed.packed:
            if node is None:
                break
            slot = node.get(byte)
            if slot is None:
                break
            if slot.value is not None:
                best = slot.value
            node = slot.child
        if best is None:
            return None
        ranges, network = best
        return RangeMatch(ranges.product, ranges.category, str(parsed), network)


def _claim(slot: _Slot, value: tuple[RangeList, str], length: int) -> None:
    if length >= slot.length:
        slot.value = value
        slot.length = length


def load_ip_ranges(directory: Path | None = None) -> IpRanges:
    """The bundled range files (or every `ip_ranges_*.txt` in `directory`)."""
    if directory is None:
        return _bundled()
    files = sorted((p.name, p.read_text("utf-8"))
                   for p in Path(directory).glob(f"{_PREFIX}*.txt"))
    return _build(files)


@cache
def _bundled() -> IpRanges:
    # Read-only once built; every provider in the process shares it (about a second to build).
    return _build(bundled_range_files())


def _build(files: list[tuple[str, str]]) -> IpRanges:
    problems: list[str] = []
    lists: list[RangeList] = []
    for name, text in files:
        try:
            lists.append(parse_range_file(text, name))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    return IpRanges(lists)
