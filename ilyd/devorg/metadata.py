"""The Metadata API (SOAP): `POST /services/Soap/m/{version}[/…]`.

CRUD calls (create/read/update/upsert/deleteMetadata), listMetadata and describeMetadata
on the types devorg emulates: Layout, Profile (its layout assignments) and CustomField
(shared with Tooling). deploy and retrieve live in metadata_deploy.py; both build on
metadata_components.py. Clients append their own suffixes to the URL (simple-salesforce
posts to `…/deployRequest/<id>`), which Salesforce ignores: the SOAP body names the call.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_crud_based_calls_intro.htm
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING

from ilyd.devorg import metadata_fields as fields
from ilyd.devorg.dml_ops import RecordError
from ilyd.devorg.metadata_components import Call, file_properties, read_component, write_component
from ilyd.devorg.metadata_deploy import CALLS as ZIP_CALLS
from ilyd.devorg.metadata_layouts import metadata_state
from ilyd.devorg.metadata_soap import (
    XSI_TYPE,
    SoapFaultError,
    add,
    fault_response,
    parse_envelope,
    response,
    text,
)
from ilyd.devorg.rest import RELEASES
from ilyd.devorg.web import Request, Response, Router

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

TYPES = ("CustomField", "Layout", "Profile")
# CRUD calls take at most 10 components of one type.
# https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_createMetadata.htm
MAX_COMPONENTS = 10
_WRITES = frozenset({"createMetadata", "updateMetadata", "upsertMetadata", "deleteMetadata",
                     "deploy"})


def register(router: Router, dev: DevOrg) -> None:
    """Add the Metadata API endpoint (authenticated by the SOAP SessionHeader)."""
    router.add("POST", r"/services/Soap/m/(?P<version>\d+\.\d+)(?:/[^?]*)?",
               lambda request: handle(dev, request), "metadata", auth="public")


def handle(dev: DevOrg, request: Request) -> Response:
    """Parse the envelope, authenticate, count, check permissions, run the call."""
    try:
        envelope = parse_envelope(request.body)
        version = request.params["version"]
        if int(float(version)) not in RELEASES:
            raise SoapFaultError("UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL")
        session = dev.tokens.lookup(envelope.session_id)
        if session is None:
            raise SoapFaultError("INVALID_SESSION_ID",
                            "Invalid Session ID found in SessionHeader: Illegal Session")
        org = session.org
        access = org.access(session.user_id)
        if not access.has("PermissionsApiEnabled"):
            raise SoapFaultError("API_DISABLED_FOR_ORG",
                            "API is not enabled for this Organization or Partner")
        allowed, _, _ = org.usage.try_consume(f"POST metadata.{envelope.call}")
        if not allowed:
            raise SoapFaultError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        # Every Metadata API call needs Modify Metadata Through Metadata API Functions or
        # Modify All Data.
        # https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_metadata_perm.htm
        if not (access.has("PermissionsModifyMetadata") or access.has("PermissionsModifyAllData")):
            raise SoapFaultError("INSUFFICIENT_ACCESS", "use of the Metadata API requires a user "
                            "with the ModifyAllData or ModifyMetadata permissions")
        # Creating, updating and deleting metadata also needs Customize Application.
        # https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_modify_metadata_perm.htm
        if envelope.call in _WRITES and not access.has("PermissionsCustomizeApplication"):
            raise SoapFaultError("INSUFFICIENT_ACCESS", "insufficient access rights: creating, "
                            "updating or deleting metadata requires Customize Application")
        handler = _CALLS.get(envelope.call) or ZIP_CALLS.get(envelope.call)
        if handler is None:
            raise SoapFaultError("Client", "No operation available for request "
                            f"{{http://soap.sforce.com/2006/04/metadata}}{envelope.call}",
                            client=True)
        call = Call(org, session.user_id, version, metadata_state(org))
        with org.lock:
            results = handler(call, envelope.body)
        return response(envelope.call, results)
    except SoapFaultError as fault:
        return fault_response(fault)


def _names(body: ET.Element) -> list[str]:
    return [e.text or "" for e in _components(body, "fullNames")]


def _components(body: ET.Element, name: str) -> list[ET.Element]:
    found = body.findall(name)
    if len(found) > MAX_COMPONENTS:
        raise SoapFaultError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than "
                        f"{MAX_COMPONENTS} records in this operation")
    return found


def _type_of(element: ET.Element) -> str:
    kind = element.get(XSI_TYPE) or ""
    if kind not in TYPES:
        raise SoapFaultError("INVALID_TYPE", f"This type of metadata is not available for this "
                        f"organization: {kind or '(no xsi:type)'}")
    return kind


def _checked_type(body: ET.Element) -> str:
    kind = text(body, "type") or ""
    if kind not in TYPES:
        raise SoapFaultError("INVALID_TYPE", "This type of metadata is not available for this "
                        f"organization: {kind}")
    return kind


def _save_result(full_name: str, error: RecordError | None, tag: str = "result",
                 created: bool | None = None) -> ET.Element:
    result = ET.Element(tag)
    if created is not None:
        add(result, "created", created)
    if error is not None:
        errors = ET.SubElement(result, "errors")
        for name in error.fields:
            add(errors, "fields", name)
        add(errors, "message", error.message)
        add(errors, "statusCode", error.status_code)
    add(result, "fullName", full_name)
    add(result, "success", error is None)
    return result


def _write(call: Call, body: ET.Element, *, create: bool, update: bool,
           upsert: bool = False) -> list[ET.Element]:
    results = []
    for element in _components(body, "metadata"):
        kind = _type_of(element)
        created, error = write_component(call, element, kind, create=create, update=update)
        results.append(_save_result(text(element, "fullName") or "", error,
                                    created=created if upsert else None))
    return results


def create_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """createMetadata: SaveResult per component."""
    return _write(call, body, create=True, update=False)


def update_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """updateMetadata: SaveResult per component (each must exist)."""
    return _write(call, body, create=False, update=True)


def upsert_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """upsertMetadata: UpsertResult (with `created`) per component."""
    return _write(call, body, create=True, update=True, upsert=True)


def read_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """readMetadata: one ReadResult, a record per name in order; a name that matches
    nothing is a nil record, as Salesforce answers it."""
    kind = _checked_type(body)
    names = _names(body)
    result = ET.Element("result")
    for name in names:
        found = read_component(call, kind, name)
        result.append(found if found is not None else
                      ET.Element("records", {"xsi:nil": "true"}))
    return [result]


def delete_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """deleteMetadata: DeleteResult per name. A layout a profile uses cannot go."""
    kind = _checked_type(body)
    results = []
    for name in _names(body):
        error: RecordError | None = None
        if kind == "CustomField":
            error = fields.delete_field(call.org, call.user_id, call.state, name)
        elif kind == "Profile":
            error = RecordError("INVALID_OPERATION",
                                "Cannot delete a standard profile", ["fullName"])
        elif name.lower() not in call.state.layouts:
            error = RecordError("INVALID_CROSS_REFERENCE_KEY",
                                f"In field: fullName - no Layout named {name} found",
                                ["fullName"])
        elif any(name.lower() in (a.lower() for a in assigned)
                 for assigned in call.state.assignments.values()):
            error = RecordError("CANNOT_DELETE_MANAGED_OBJECT",
                                f"This layout is assigned to a profile: {name}", ["fullName"])
        else:
            del call.state.layouts[name.lower()]
        results.append(_save_result(name, error))
    return results


def list_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """listMetadata: FileProperties of each queried type (at most 3 queries)."""
    queries = body.findall("queries")
    # https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_listmetadata.htm
    if len(queries) > 3:
        raise SoapFaultError("INVALID_QUERY", "Too many queries: at most 3 queries are allowed")
    out: list[ET.Element] = []
    for query in queries:
        kind = text(query, "type") or ""
        if kind in TYPES:
            out.extend(file_properties(call, kind))
    return out


_DESCRIBED = (("CustomObject", "objects", "object", ("CustomField",)),
              ("Layout", "layouts", "layout", ()), ("Profile", "profiles", "profile", ()))


def describe_metadata(call: Call, body: ET.Element) -> list[ET.Element]:
    """describeMetadata: the types devorg emulates."""
    result = ET.Element("result")
    for name, directory, suffix, children in _DESCRIBED:
        entry = ET.SubElement(result, "metadataObjects")
        for child in children:
            add(entry, "childXmlNames", child)
        add(entry, "directoryName", directory)
        add(entry, "inFolder", False)
        add(entry, "metaFile", False)
        add(entry, "suffix", suffix)
        add(entry, "xmlName", name)
    add(result, "organizationNamespace", "")
    add(result, "partialSaveAllowed", True)
    add(result, "testRequired", False)
    return [result]


_CALLS: dict[str, Callable[[Call, ET.Element], list[ET.Element]]] = {
    "createMetadata": create_metadata, "readMetadata": read_metadata,
    "updateMetadata": update_metadata, "upsertMetadata": upsert_metadata,
    "deleteMetadata": delete_metadata, "listMetadata": list_metadata,
    "describeMetadata": describe_metadata,
}
