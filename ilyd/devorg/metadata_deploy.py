"""deploy / checkDeployStatus and retrieve / checkRetrieveStatus: zip files of metadata.

A deploy zip holds `package.xml` (at its root or in one top-level folder) and the files
of the components it lists, in the Metadata API file format: `objects/<Object>.object`
(a CustomObject holding `<fields>`), `layouts/<Object>-<Name>.layout`,
`profiles/<Name>.profile`. devorg runs a deploy or a retrieve at once; the status calls
report the finished result. With rollbackOnError (Salesforce's default for production)
a deploy with any failed component changes nothing; checkOnly changes nothing at all.
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_deploy.htm
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_retrieve.htm
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from ilyd.devorg import metadata_fields as fields
from ilyd.devorg.dml import WriteOp, save
from ilyd.devorg.dml_ops import RecordError
from ilyd.devorg.metadata_components import Call, file_properties, read_component, write_component
from ilyd.devorg.metadata_soap import MD_NS, SoapFaultError, add, strip, text, texts
from ilyd.devorg.values import now, to_json

_FOLDERS = {"CustomField": ("objects", "object"), "Layout": ("layouts", "layout"),
            "Profile": ("profiles", "profile")}
_ORDER = ("CustomField", "Layout", "Profile")  # fields before the layouts that show them


@dataclass
class _Component:
    kind: str
    full_name: str
    file_name: str
    element: ET.Element | None
    error: RecordError | None = None
    created: bool = False


@dataclass
class DeployJob:
    """A finished deploy, as checkDeployStatus reports it."""

    id: str
    check_only: bool
    rollback: bool
    components: list[_Component] = field(default_factory=list)
    problem: str | None = None  # a zip devorg cannot read: the whole deploy failed
    stamp: str = ""


@dataclass
class RetrieveJob:
    """A finished retrieve: the zip and the FileProperties of what it holds."""

    id: str
    zip_bytes: bytes
    properties: list[ET.Element]


def _flag(element: ET.Element, name: str, default: bool = False) -> bool:
    value = text(element, name)
    return default if value is None else value.strip().lower() == "true"


def _parse(data: bytes) -> ET.Element:
    # our own zip or a test's: see metadata_soap.parse_envelope on expat's limits
    return strip(ET.fromstring(data))  # noqa: S314


def _package(archive: zipfile.ZipFile) -> tuple[str, ET.Element]:
    names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "package.xml"]
    if not names:
        raise ValueError("No package.xml found")
    root = min(names, key=len).rpartition("package.xml")[0]
    return root, _parse(archive.read(root + "package.xml"))


def _read_components(archive: zipfile.ZipFile) -> list[_Component]:
    root, package = _package(archive)
    files = {unquote(n[len(root):]): n for n in archive.namelist() if n.startswith(root)}
    wanted = {t.findtext("name") or "": texts(t, "members") for t in package.findall("types")}
    components: list[_Component] = []
    for kind in _ORDER:
        for member in wanted.get(kind, []):
            folder, suffix = _FOLDERS[kind]
            owner = member.partition(".")[0] if kind == "CustomField" else member
            file_name = f"{folder}/{owner}.{suffix}"
            element = None
            if file_name in files:
                content = _parse(archive.read(files[file_name]))
                if kind == "CustomField":
                    name = member.partition(".")[2].lower()
                    element = next((f for f in content.findall("fields")
                                    if (text(f, "fullName") or "").lower() == name), None)
                    if element is not None:
                        element = copy.deepcopy(element)
                        element.find("fullName").text = member  # type: ignore[union-attr]
                else:
                    element = content
                    element.insert(0, ET.Element("fullName"))
                    element[0].text = member
            component = _Component(kind, member, file_name, element)
            if element is None:
                component.error = RecordError(
                    "Error", f"An object '{member}' of type {kind} was named in package.xml, "
                    "but was not found in zipped directory")
            components.append(component)
    for kind in set(wanted) - set(_ORDER):
        for member in wanted[kind]:
            components.append(_Component(kind, member, "package.xml", None, RecordError(
                "Error", f"devorg does not emulate the metadata type {kind}")))
    return components


def deploy(call: Call, body: ET.Element) -> list[ET.Element]:
    """deploy: run the zip now; the AsyncResult says Queued, as Salesforce's does."""
    options = body.find("DeployOptions")
    options = options if options is not None else ET.Element("DeployOptions")
    job = DeployJob(call.org.ids.new("0Af"), _flag(options, "checkOnly"),
                    _flag(options, "rollbackOnError", True), stamp=to_json(now()))  # type: ignore[arg-type]
    try:
        raw = base64.b64decode(text(body, "ZipFile") or "", validate=False)
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            job.components = _read_components(archive)
    except (binascii.Error, zipfile.BadZipFile, ValueError, ET.ParseError, KeyError) as exc:
        job.problem = str(exc) or "Unable to read the zip file"
    if job.problem is None:
        _apply(call, job)
    call.state.jobs[job.id] = job
    result = ET.Element("result")
    add(result, "done", False)
    add(result, "id", job.id)
    add(result, "state", "Queued")
    return [result]


def _apply(call: Call, job: DeployJob) -> None:
    layouts = copy.deepcopy(call.state.layouts)
    assignments = copy.deepcopy(call.state.assignments)
    undo: list[WriteOp] = []
    for component in job.components:
        if component.error is not None or component.element is None:
            continue
        before = fields.find_field(call.org, component.full_name) \
            if component.kind == "CustomField" else None
        created, error = write_component(call, component.element, component.kind,
                                         create=True, update=True)
        component.created, component.error = created, error
        if error is None and component.kind == "CustomField":
            if before is None:
                after = fields.find_field(call.org, component.full_name)
                undo.append(WriteOp("delete", "CustomField", str(after["Id"])))  # type: ignore[index]
            else:
                undo.append(WriteOp("update", "CustomField", str(before["Id"]),
                                    {"Metadata": before.get("Metadata")}))
    failed = any(c.error is not None for c in job.components)
    if job.check_only or (failed and job.rollback):
        call.state.layouts.clear()
        call.state.layouts.update(layouts)
        call.state.assignments.clear()
        call.state.assignments.update(assignments)
        save(call.org, call.user_id, list(reversed(undo)), tooling=True)


def _deploy_result(job: DeployJob, include_details: bool) -> ET.Element:
    errors = sum(c.error is not None for c in job.components) + (job.problem is not None)
    deployed = 0 if (errors and job.rollback) else len(job.components) - errors
    status = "Failed" if errors and (job.rollback or deployed == 0) else (
        "SucceededPartial" if errors else "Succeeded")
    result = ET.Element("result")
    add(result, "checkOnly", job.check_only)
    add(result, "completedDate", job.stamp)
    add(result, "createdDate", job.stamp)
    if include_details:
        details = ET.SubElement(result, "details")
        for c in job.components:
            entry = ET.SubElement(details, "componentFailures" if c.error else
                                  "componentSuccesses")
            add(entry, "changed", c.error is None)
            add(entry, "componentType", c.kind)
            add(entry, "created", c.created)
            add(entry, "createdDate", job.stamp)
            add(entry, "deleted", False)
            add(entry, "fileName", c.file_name)
            add(entry, "fullName", c.full_name)
            if c.error is not None:
                add(entry, "problem", c.error.message)
                add(entry, "problemType", "Error")
            add(entry, "success", c.error is None)
    add(result, "done", True)
    if job.problem is not None:
        add(result, "errorMessage", job.problem)
        add(result, "errorStatusCode", "UNKNOWN_EXCEPTION")
    add(result, "id", job.id)
    add(result, "ignoreWarnings", False)
    add(result, "lastModifiedDate", job.stamp)
    add(result, "numberComponentErrors", errors)
    add(result, "numberComponentsDeployed", deployed)
    add(result, "numberComponentsTotal", len(job.components))
    for name in ("numberTestErrors", "numberTestsCompleted", "numberTestsTotal"):
        add(result, name, 0)
    add(result, "rollbackOnError", job.rollback)
    add(result, "runTestsEnabled", False)
    add(result, "startDate", job.stamp)
    add(result, "status", status)
    add(result, "success", status == "Succeeded")
    return result


def _job(call: Call, body: ET.Element, kind: type) -> DeployJob | RetrieveJob:
    job_id = text(body, "asyncProcessId") or ""
    job = call.state.jobs.get(job_id)
    if not isinstance(job, kind):
        raise SoapFaultError("INVALID_ID_FIELD", f"Invalid id specified: {job_id}")
    return job


def check_deploy_status(call: Call, body: ET.Element) -> list[ET.Element]:
    """checkDeployStatus: the finished DeployResult (details when asked)."""
    job = _job(call, body, DeployJob)
    return [_deploy_result(job, _flag(body, "includeDetails"))]  # type: ignore[arg-type]


def _file(element: ET.Element, root_tag: str) -> bytes:
    out = ET.Element(root_tag, {"xmlns": MD_NS})
    for child in element:
        if child.tag != "fullName" or root_tag == "CustomObject":
            out.append(copy.deepcopy(child))
    ET.indent(out, space="    ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(out, encoding="utf-8")


def retrieve(call: Call, body: ET.Element) -> list[ET.Element]:
    """retrieve (unpackaged types): build the zip now; checkRetrieveStatus hands it out."""
    request = body.find("retrieveRequest")
    unpackaged = request.find("unpackaged") if request is not None else None
    if unpackaged is None:
        raise SoapFaultError("INVALID_CROSS_REFERENCE_KEY",
                             "devorg retrieves unpackaged components only")
    version = text(request, "apiVersion") or call.version  # type: ignore[arg-type]
    package = ET.Element("Package")
    files: dict[str, bytes] = {}
    properties: list[ET.Element] = []
    for types in unpackaged.findall("types"):
        kind = text(types, "name") or ""
        if kind not in _FOLDERS:
            continue
        members = texts(types, "members")
        listed = {p.findtext("fullName") or "": p for p in file_properties(
            call, kind, "fileProperties")}
        chosen = sorted(listed) if "*" in members else [m for m in members if m in listed]
        entry = ET.SubElement(package, "types")
        objects: dict[str, ET.Element] = {}
        for member in chosen:
            properties.append(listed[member])
            add(entry, "members", member)
            element = read_component(call, kind, member)
            if element is None:
                continue
            if kind == "CustomField":
                sobject = member.partition(".")[0]
                holder = objects.setdefault(sobject, ET.Element("CustomObject"))
                element.tag = "fields"
                element.attrib.clear()
                element.find("fullName").text = member.partition(".")[2]  # type: ignore[union-attr]
                holder.append(element)
            else:
                folder, suffix = _FOLDERS[kind]
                files[f"{folder}/{quote(member, safe=' -')}.{suffix}"] = _file(element, kind)
        for sobject, holder in objects.items():
            files[f"objects/{sobject}.object"] = _file(holder, "CustomObject")
        add(entry, "name", kind)
    add(package, "version", version)
    files["package.xml"] = _file(package, "Package")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(f"unpackaged/{name}", data)
    job = RetrieveJob(call.org.ids.new("09S"), buffer.getvalue(), properties)
    call.state.jobs[job.id] = job
    result = ET.Element("result")
    add(result, "done", False)
    add(result, "id", job.id)
    add(result, "state", "Queued")
    return [result]


def check_retrieve_status(call: Call, body: ET.Element) -> list[ET.Element]:
    """checkRetrieveStatus: the RetrieveResult, with the zip when includeZip is true."""
    job = _job(call, body, RetrieveJob)
    result = ET.Element("result")
    add(result, "done", True)
    for prop in job.properties:  # type: ignore[union-attr]
        result.append(copy.deepcopy(prop))
    add(result, "id", job.id)
    add(result, "status", "Succeeded")
    add(result, "success", True)
    if _flag(body, "includeZip", True):
        add(result, "zipFile", base64.b64encode(job.zip_bytes).decode())  # type: ignore[union-attr]
    return [result]


CALLS: dict[str, Callable[[Call, ET.Element], list[ET.Element]]] = {
    "deploy": deploy, "checkDeployStatus": check_deploy_status,
    "retrieve": retrieve, "checkRetrieveStatus": check_retrieve_status,
}
