"""`ilyd fields package ORG --out FILE.zip`: the Ily fields as a Metadata API deploy
package, for admins who deploy them with the Salesforce CLI (when the integration user
may not create fields itself)."""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ilyd.config import OrgConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fields package`."""
    parser = subparsers.add_parser("fields", help="the Ily custom fields")
    verbs = parser.add_subparsers(dest="fields_command", metavar="VERB", required=True)
    package = verbs.add_parser(
        "package", help="write a Metadata API deploy package (package.xml + fields)")
    package.add_argument("org", help="org name from the config")
    package.add_argument("--out", required=True, metavar="FILE.zip", help="zip file to write")
    package.add_argument("--config", metavar="PATH",
                         help="take the org's objects and API version from this config")
    package.add_argument("--layouts", action="store_true",
                         help="also the page layouts profiles use, with the Ily section added"
                              " (reads them from the org: needs --config)")
    package.set_defaults(func=package_command)


def package_command(args: argparse.Namespace) -> int:
    """Write the zip; print how to deploy it."""
    from ilyd.commands.orgload import EXIT_USAGE, load_org
    from ilyd.enrich.field_package import package_files
    from ilyd.enrich.fields import OBJECTS
    from ilyd.salesforce.versions import DEFAULT_API_VERSION

    objects: tuple[str, ...] = OBJECTS
    api_version = DEFAULT_API_VERSION
    if args.layouts and not args.config:
        print("ilyd fields package: --layouts reads the org's page layouts: give --config",
              file=sys.stderr)
        return EXIT_USAGE
    if args.config:
        loaded = load_org(args.config, args.org, "fields package")
        if loaded is None:
            return EXIT_USAGE
        objects, api_version = loaded[1].objects, loaded[1].api_version
    files = package_files(objects, api_version=api_version)
    if args.layouts:
        layouts = _layout_files(loaded[1], objects)
        if layouts is None:
            return 1
        files = {**files, **layouts, "package.xml": _with_layouts(files["package.xml"],
                                                                  layouts)}
    out = Path(args.out)
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in sorted(files.items()):
                # A --metadata-zip deploy expects the package in a top-level folder.
                archive.writestr(f"ily_fields/{name}", data)
    except OSError as exc:
        print(f"ilyd fields package: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    shown = f" and {len(layouts)} page layout(s)" if args.layouts else ""
    print(f"wrote {out}: Ily fields on {', '.join(objects)}{shown}.\n"
          f"deploy it:  sf project deploy start --metadata-zip {out}"
          " --target-org <alias>\n"
          f"then:       ilyd ctl provision {args.org}   (grants the integration user"
          " field-level security)")
    return 0


def _layout_files(org: OrgConfig, objects: tuple[str, ...]) -> dict[str, bytes] | None:
    """The org's assigned layouts with the Ily section, or None after saying why not."""
    from ilyd.actors.context import OrgSecrets
    from ilyd.errors import IlydError
    from ilyd.provision.layout import package_layouts
    from ilyd.salesforce.connect import make_org_rest_client
    from ilyd.salesforce.metadata import MetadataClient

    try:
        rest = make_org_rest_client(org, OrgSecrets.read(org), export_usage=False)
    except (IlydError, ValueError) as exc:
        print(f"ilyd fields package: {exc}", file=sys.stderr)
        return None
    try:
        return package_layouts(MetadataClient(rest.http), objects)
    except IlydError as exc:
        print(f"ilyd fields package: cannot read the page layouts: {exc}", file=sys.stderr)
        return None
    finally:
        rest.close()


def _with_layouts(package: bytes, layouts: dict[str, bytes]) -> bytes:
    """package.xml with a Layout entry for each layout file."""
    import xml.etree.ElementTree as ET  # here: every `ilyd` command line imports this module
    from urllib.parse import unquote

    parsed = ET.fromstring(package)  # noqa: S314 (our own package.xml)
    namespace = parsed.tag.partition("}")[0].lstrip("{")
    root = ET.Element("Package", {"xmlns": namespace})
    for entry in parsed:  # local names under a literal xmlns: no global prefix registry
        copied = ET.SubElement(root, entry.tag.rpartition("}")[2])
        copied.text = entry.text
        for child in entry:
            ET.SubElement(copied, child.tag.rpartition("}")[2]).text = child.text
    types = ET.Element("types")
    for name in sorted(layouts):
        ET.SubElement(types, "members").text = unquote(
            name.removeprefix("layouts/").removesuffix(".layout"))
    ET.SubElement(types, "name").text = "Layout"
    root.insert(len(root) - 1, types)  # before <version>, the last element
    ET.indent(root, space="    ")
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
            + b"\n")
