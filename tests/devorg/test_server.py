"""devorg's HTTP server: its header parsing gives what the standard library's gives."""

from __future__ import annotations

import http.client
import io

import pytest
import requests

from ilyd.devorg import DevOrg
from ilyd.devorg.server import _parse_headers

BLOCKS = [
    b"Host: x\r\nContent-Type: application/json\r\nAuthorization: Bearer abc\r\n\r\n",
    b"X-Empty:\r\nX-Spaces:   v  \r\nX-Tab:\tv\r\nX-Colons: a:b: c\r\n\r\n",
    b"Lf-Only: yes\nOther: 1\n\n",
    b"Folded: first\r\n  second\r\nAfter: 1\r\n\r\n",
    b"Stray: a\rb\r\nNext: 2\r\n\r\n",
    b"Feed: a\x0cb\r\nNel: a\x85b\r\nVt: a\x0bb\r\n\r\n",
    b"Latin: caf\xe9\r\n\r\n",
    b"no colon here\r\nLater: 1\r\n\r\n",
    b": empty name\r\nLater: 1\r\n\r\n",
    b"Bad Name: 1\r\nLater: 1\r\n\r\n",
    b"From someone\r\nX: 1\r\n\r\n",
    b"Cut: short",
    b"Ends: without blank line\r\n",
    b"\r\n",
    b"Dup: 1\r\nDup: 2\r\n\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_header_blocks_parse_as_the_standard_library_parses_them(block: bytes) -> None:
    ours = _parse_headers(io.BytesIO(block + b"BODY"), http.client.HTTPMessage)
    theirs = http.client.parse_headers(io.BytesIO(block + b"BODY"))
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items()
    assert ours.get_payload() == theirs.get_payload()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


def test_too_many_headers_and_overlong_lines_raise_as_the_standard_library_does() -> None:
    many = b"".join(b"H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="got more than 100 headers"):
        _parse_headers(io.BytesIO(many), http.client.HTTPMessage)
    with pytest.raises(http.client.LineTooLong):
        _parse_headers(io.BytesIO(b"Long: " + b"x" * 70000 + b"\r\n\r\n"),
                       http.client.HTTPMessage)


def test_a_request_with_an_overlong_header_is_answered_431(dev: DevOrg) -> None:
    response = requests.get(f"{dev.url}/services/data/", headers={"X-Long": "x" * 70000},
                            timeout=10)
    assert response.status_code == 431
    assert requests.get(f"{dev.url}/services/data/", timeout=10).status_code == 200
