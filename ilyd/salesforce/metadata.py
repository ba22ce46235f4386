"""A plain client for Salesforce's Metadata API (SOAP): list, read and update components.

Envelopes are built with xml.etree (so every value is escaped) and sent through the
org's `OrgHttp` session and token. Components are handled as namespace-free elements
(`<Layout><fullName>…</fullName><layoutSections>…`); the client adds and removes the
metadata namespace at the edge. A whole-call failure is a SOAP fault (HTTP 500), turned
into `SalesforceError` with the fault's code; INVALID_SESSION_ID refreshes the token once.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_crud_based_calls_intro.htm
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog

from ilyd.errors import AuthError, SalesforceError
from ilyd.salesforce.http import OrgHttp, send_with_retry

__all__ = ["MAX_COMPONENTS", "MetadataClient", "MetadataSaveResult", "strip"]

log = structlog.get_logger(__name__)

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
# CRUD calls take at most 10 components each.
# https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_readMetadata.htm
MAX_COMPONENTS = 10


@dataclass(frozen=True)
class MetadataSaveResult:
    """The outcome of one component of an update/create/upsert call."""

    full_name: str
    success: bool
    errors: tuple[tuple[str, str], ...] = ()  # (statusCode, message)

    def describe(self) -> str:
        """The errors on one line."""
        return "; ".join(f"{code}: {message}" for code, message in self.errors)


def strip(element: ET.Element) -> ET.Element:
    """A copy with local names only, `xsi:type`/`xsi:nil` kept as plain attributes."""
    out = ET.Element(element.tag.rpartition("}")[2])
    for name in ("type", "nil"):
        value = element.get(f"{{{XSI_NS}}}{name}")
        if value:
            out.set(f"xsi:{name}", value.rpartition(":")[2])
    out.text = (element.text or "").strip() or None
    for child in element:
        out.append(strip(child))
    return out


def _chunks(items: Sequence[object], size: int = MAX_COMPONENTS) -> Iterable[Sequence[object]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class MetadataClient:
    """The Metadata API of one org, over the org's HTTP plumbing."""

    def __init__(self, http: OrgHttp) -> None:
        self.http = http

    # -- calls ----------------------------------------------------------------------------
    def list_names(self, kind: str) -> list[str]:
        """Full names of every component of one type (listMetadata)."""
        query = ET.Element("queries")
        ET.SubElement(query, "type").text = kind
        results = self.call("listMetadata", [query])
        return sorted(r.findtext("fullName") or "" for r in results)

    def read(self, kind: str, names: Sequence[str]) -> dict[str, ET.Element]:
        """Components by full name (readMetadata, 10 a call); missing names are left out."""
        found: dict[str, ET.Element] = {}
        for chunk in _chunks(list(names)):
            body = [_text_element("type", kind)]
            body += [_text_element("fullNames", str(n)) for n in chunk]
            for result in self.call("readMetadata", body):
                for record in result.findall("records"):
                    name = record.findtext("fullName")
                    if name and record.get("xsi:nil") != "true":
                        found[name] = record
        return found

    def update(self, kind: str, components: Sequence[ET.Element]) -> list[MetadataSaveResult]:
        """Save existing components (updateMetadata, 10 a call)."""
        out: list[MetadataSaveResult] = []
        for chunk in _chunks(list(components)):
            body = []
            for component in chunk:
                assert isinstance(component, ET.Element)
                element = ET.Element("metadata", {"xsi:type": kind})
                element.extend(list(component))
                body.append(element)
            for result in self.call("updateMetadata", body):
                errors = tuple((e.findtext("statusCode") or "", e.findtext("message") or "")
                               for e in result.findall("errors"))
                out.append(MetadataSaveResult(result.findtext("fullName") or "",
                                              result.findtext("success") == "true", errors))
        return out

    def call(self, name: str, body: Sequence[ET.Element]) -> list[ET.Element]:
        """Send one call; its `result` elements, namespace-free."""
        token = self.http.tokens.token()
        refreshed = False
        while True:
            envelope = _envelope(token.access_token, name, body)
            url = f"{token.instance_url.rstrip('/')}/services/Soap/m/{self.http.api_version}"
            # A SOAP call is a POST: never resent after it may have reached Salesforce.
            response = send_with_retry(
                self.http.session, "POST", url, op=f"metadata.{name}", retry=self.http.retry,
                retry_safe=False, timeout=self.http.timeout, data=envelope,
                headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
            fault = _fault(response.content) if response.status_code >= 400 else None
            if fault is not None and fault[0] == "INVALID_SESSION_ID" and not refreshed:
                log.info("sf_session_refresh", org=self.http.org, op=f"metadata.{name}")
                token = self.http.tokens.refresh(stale=token)
                refreshed = True
                continue
            what = f"Metadata API {name} on org {self.http.org}"
            if fault is not None:
                code, message = fault
                error = AuthError if code == "INVALID_SESSION_ID" else SalesforceError
                raise error(f"{what}: {message}", status=response.status_code,
                            error_code=code)
            if response.status_code >= 400:
                raise SalesforceError(f"{what}: HTTP {response.status_code}",
                                      status=response.status_code)
            root = _parse(response.content, what)
            answer = root.find(f"{{{SOAP_NS}}}Body/{{{MD_NS}}}{name}Response")
            if answer is None:
                raise SalesforceError(f"{what}: the answer has no {name}Response",
                                      status=response.status_code)
            return [strip(r) for r in answer.findall(f"{{{MD_NS}}}result")]


def _text_element(name: str, value: str) -> ET.Element:
    element = ET.Element(name)
    element.text = value
    return element


def _envelope(session_id: str, call: str, body: Sequence[ET.Element]) -> bytes:
    # Literal prefixes with their xmlns attributes: the children stay in the default
    # (metadata) namespace of the call element, as Salesforce's WSDL expects.
    envelope = ET.Element("soapenv:Envelope", {"xmlns:soapenv": SOAP_NS, "xmlns:xsi": XSI_NS})
    header = ET.SubElement(ET.SubElement(envelope, "soapenv:Header"), "SessionHeader",
                           {"xmlns": MD_NS})
    ET.SubElement(header, "sessionId").text = session_id
    request = ET.SubElement(ET.SubElement(envelope, "soapenv:Body"), call, {"xmlns": MD_NS})
    request.extend(body)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(envelope, encoding="utf-8")


def _parse(data: bytes, what: str) -> ET.Element:
    try:
        # ElementTree resolves no external entities and expat (2.4+) caps entity
        # expansion, the attacks defusedxml guards against.
        return ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise SalesforceError(f"{what}: the answer is not XML ({exc})") from exc


def _fault(data: bytes) -> tuple[str, str] | None:
    """(code, message) of a SOAP fault: `sf:CODE` and "CODE: message"."""
    try:
        root = ET.fromstring(data)  # noqa: S314 (see _parse)
    except ET.ParseError:
        return None
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    if fault is None:
        return None
    code = (fault.findtext("faultcode") or "").rpartition(":")[2]
    message = fault.findtext("faultstring") or ""
    return code, message.removeprefix(f"{code}: ")
