"""SOAP framing of the Metadata API: reading request envelopes, writing responses and faults.

Requests are parsed with their namespaces stripped (clients differ in prefixes: zeep writes
`ns0:`, jsforce a default namespace); `xsi:type` survives as the attribute `xsi:type`
with its local name. Responses are written the way Salesforce writes them: the call's
`…Response` element carries the metadata namespace as its default, so `xsi:type="Layout"`
resolves to the metadata type for any client.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_calls_intro.htm
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ilyd.devorg.web import Response

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = "xsi:type"
_XSI_TYPE_CLARK = f"{{{XSI_NS}}}type"
_CONTENT_TYPE = "text/xml;charset=UTF-8"


class SoapFaultError(Exception):
    """A call-level failure, answered as a SOAP fault (`sf:CODE`, "CODE: message")."""

    def __init__(self, code: str, message: str, *, client: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client = client  # a malformed request: soapenv:Client, no sf: detail


@dataclass(frozen=True)
class Envelope:
    """One parsed request: the SessionHeader's session id and the call's element."""

    session_id: str
    call: str
    body: ET.Element


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rpartition("}")[2]


def strip(element: ET.Element) -> ET.Element:
    """A copy of `element` with local names only; `xsi:type` kept by its local value."""
    out = ET.Element(local(element.tag))
    xsi_type = element.get(_XSI_TYPE_CLARK)
    if xsi_type:
        out.set(XSI_TYPE, xsi_type.rpartition(":")[2])
    out.text = (element.text or "").strip() or None
    for child in element:
        out.append(strip(child))
    return out


def parse_envelope(data: bytes) -> Envelope:
    """The session id and call of a request body; SoapFaultError when it is no envelope."""
    try:
        # ElementTree resolves no external entities, and expat (2.4+) caps entity
        # expansion: the billion-laughs and XXE attacks defusedxml guards against fail here.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise SoapFaultError("Client", f"Unable to parse the request: {exc}", client=True) from exc
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise SoapFaultError("VersionMismatch", "Wrong SOAP envelope: expected "
                        f"{{{SOAP_NS}}}Envelope", client=True)
    session = root.find(f"{{{SOAP_NS}}}Header/{{{MD_NS}}}SessionHeader/{{{MD_NS}}}sessionId")
    body = root.find(f"{{{SOAP_NS}}}Body")
    call = body[0] if body is not None and len(body) else None
    if call is None:
        raise SoapFaultError("Client", "No operation in the SOAP Body", client=True)
    if not call.tag.startswith(f"{{{MD_NS}}}"):
        raise SoapFaultError("Client", f"No operation available for request {call.tag}",
                        client=True)
    return Envelope((session.text or "").strip() if session is not None else "",
                    local(call.tag), strip(call))


def texts(element: ET.Element, name: str) -> list[str]:
    """The text of every direct child named `name`."""
    return [child.text or "" for child in element if child.tag == name]


def text(element: ET.Element, name: str, default: str | None = None) -> str | None:
    """The text of the first direct child named `name`."""
    found = element.find(name)
    return default if found is None else (found.text or "")


def add(parent: ET.Element, name: str, value: object) -> ET.Element:
    """Append `<name>value</name>` (booleans as true/false)."""
    child = ET.SubElement(parent, name)
    if isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = str(value)
    return child


def _document(body_child: ET.Element, *, extra_ns: dict[str, str]) -> bytes:
    envelope = ET.Element("soapenv:Envelope", {"xmlns:soapenv": SOAP_NS,
                                               "xmlns:xsi": XSI_NS, **extra_ns})
    ET.SubElement(envelope, "soapenv:Body").append(body_child)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(envelope, encoding="utf-8",
                                                                   xml_declaration=False)


def response(call: str, results: list[ET.Element]) -> Response:
    """200 with `<callResponse xmlns="…metadata"><result>…</result>…`."""
    wrapper = ET.Element(f"{call}Response", {"xmlns": MD_NS})
    for result in results:
        result.tag = "result"
        wrapper.append(result)
    return Response(200, _document(wrapper, extra_ns={}), content_type=_CONTENT_TYPE)


def fault_response(fault: SoapFaultError) -> Response:
    """500 with Salesforce's fault: `sf:CODE`, "CODE: message" and an
    UnexpectedErrorFault detail carrying the code and message."""
    element = ET.Element("soapenv:Fault")
    if fault.client:
        add(element, "faultcode", f"soapenv:{fault.code}")
        add(element, "faultstring", fault.message)
        return Response(500, _document(element, extra_ns={}), content_type=_CONTENT_TYPE)
    add(element, "faultcode", f"sf:{fault.code}")
    add(element, "faultstring", f"{fault.code}: {fault.message}")
    detail = ET.SubElement(ET.SubElement(element, "detail"), "sf:UnexpectedErrorFault",
                           {XSI_TYPE: "sf:UnexpectedErrorFault"})
    add(detail, "sf:exceptionCode", fault.code)
    add(detail, "sf:exceptionMessage", fault.message)
    return Response(500, _document(element, extra_ns={"xmlns:sf": MD_NS}),
                    content_type=_CONTENT_TYPE)
