"""SPF (RFC 7208) include chains, read for technographics rather than evaluated.

A company's SPF record names the services allowed to send its mail (`include:sendgrid.net`).
We follow `include:` and `redirect=` depth-first, the order an evaluator would, and stop
at RFC 7208's limit of 10 DNS-querying terms (§4.6.4), counting `a`, `mx`, `ptr` and
`exists` too although we do not resolve them: the names an evaluator could never reach
are not evidence. Loops are cut by never fetching a domain twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# RFC 7208 §4.6.4: at most 10 terms that cause DNS queries per check_host().
SPF_LOOKUP_LIMIT = 10

_COUNTED_MECHANISMS = frozenset({"a", "mx", "ptr", "exists"})


@dataclass(frozen=True)
class SpfChain:
    """The domains named by include:/redirect= (in evaluation order) and lookups spent."""

    domains: tuple[str, ...]
    lookups: int
    truncated: bool


def spf_record(txt_strings: Sequence[str]) -> str | None:
    """The SPF record among a name's TXT strings (`v=spf1` followed by a space or nothing)."""
    for txt in txt_strings:
        text = txt.strip()
        if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 "):
            return text
    return None


def _terms(record: str) -> list[tuple[str, str | None]]:
    """(kind, target) for each term: kind is the mechanism/modifier name without qualifier."""
    terms: list[tuple[str, str | None]] = []
    for raw in record.split()[1:]:
        term = raw.lstrip("+-~?")
        if term.lower().startswith("redirect="):
            terms.append(("redirect", term.split("=", 1)[1]))
            continue
        name, _, target = term.partition(":")
        name = name.split("/", 1)[0].lower()
        terms.append((name, target or None))
    return terms


def expand_spf(
    domain: str,
    record: str,
    fetch_txt: Callable[[str], Sequence[str]],
    limit: int = SPF_LOOKUP_LIMIT,
) -> SpfChain:
    """Follow the record's includes (and redirect) depth-first within `limit` lookups."""
    named: list[str] = []
    root = domain.lower().rstrip(".")
    fetched = {root}
    lookups = 0
    truncated = False

    def walk(text: str) -> None:
        nonlocal lookups, truncated
        redirect: str | None = None
        for kind, target in _terms(text):
            if kind in _COUNTED_MECHANISMS:
                lookups += 1
                continue
            if kind not in ("include", "redirect") or not target or "%" in target:
                continue  # macros need the sender's address; nothing to learn from them
            name = target.lower().rstrip(".")
            if name not in named and name != root:
                named.append(name)
            if kind == "redirect":
                redirect = name  # RFC 7208 §6.1: applies after every mechanism
                continue
            follow(name)
        if redirect is not None:
            follow(redirect)

    def follow(name: str) -> None:
        nonlocal lookups, truncated
        if name in fetched:
            return
        if lookups >= limit:
            truncated = True
            return
        lookups += 1
        fetched.add(name)
        included = spf_record(fetch_txt(name))
        if included is not None:
            walk(included)

    walk(record)
    return SpfChain(tuple(named), lookups, truncated)
