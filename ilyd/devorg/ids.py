"""Salesforce record ids: key prefixes, 15→18 checksum, generation.

An id is a 3-character key prefix, 12 base-62 characters, and (in the 18-character form)
a 3-character suffix that encodes which of the first 15 characters are upper-case, so that
the id survives case-insensitive systems.
"""

from __future__ import annotations

import itertools
import re
import threading

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")

KEY_PREFIXES: dict[str, str] = {
    "Organization": "00D",
    "User": "005",
    "Profile": "00e",
    "Account": "001",
    "Lead": "00Q",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "FieldPermissions": "01k",
    "ObjectPermissions": "110",
    "PushTopic": "0IF",
    "CustomField": "00N",
    "PlatformEventChannelMember": "0v8",
    "LoginHistory": "0Ya",
    "UserPermissionAccess": "000",
    "BulkJob": "750",
    "QueryLocator": "01g",
}
PREFIX_TO_SOBJECT = {v: k for k, v in KEY_PREFIXES.items()}


def checksum(id15: str) -> str:
    """Return the 3-character case-safety suffix of a 15-character id."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def to18(value: str) -> str | None:
    """Normalise a 15- or 18-character id to its 18-character form; None if malformed.

    An 18-character id is re-derived from its first 15 characters, so a wrong suffix or
    a case-mangled id does not match.
    """
    if not _ID_RE.match(value):
        return None
    full = value[:15] + checksum(value[:15])
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full


def sobject_of(record_id: str) -> str | None:
    """The sObject a (well-formed) id belongs to, from its key prefix."""
    return PREFIX_TO_SOBJECT.get(record_id[:3])


class IdFactory:
    """Generates unique 18-character ids for one org.

    Ids are `prefix + pod (2 chars) + counter (10 base-62 chars)`; the pod keeps ids of
    different orgs apart the way Salesforce instances do.
    """

    def __init__(self, pod: str, start: int = 1) -> None:
        self._pod = pod
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        """Return a fresh 18-character id with the given key prefix."""
        with self._lock:
            n = next(self._counter)
        return make_id(prefix, self._pod, n)

    def advance_past(self, n: int) -> None:
        """Make sure later ids use counters above n (after loading persisted records)."""
        with self._lock:
            current = next(self._counter)
            self._counter = itertools.count(max(current, n + 1))


def make_id(prefix: str, pod: str, n: int) -> str:
    """Build an 18-character id from a prefix, a 2-character pod and a counter."""
    digits = []
    for _ in range(10):
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    id15 = prefix + pod + "".join(reversed(digits))
    return id15 + checksum(id15)


def counter_of(record_id: str) -> int:
    """Decode the counter part of an id made by `make_id`."""
    n = 0
    for ch in record_id[5:15]:
        n = n * 62 + _BASE62.index(ch)
    return n
