"""`ilyd fields package ORG --out FILE.zip`: the Ily fields as a Metadata API deploy
package, for admins who deploy them with the Salesforce CLI (when the integration user
may not create fields itself)."""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path


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
    package.set_defaults(func=package_command)


def package_command(args: argparse.Namespace) -> int:
    """Write the zip; print how to deploy it."""
    from ilyd.commands.orgload import EXIT_USAGE, load_org
    from ilyd.enrich.field_package import package_files
    from ilyd.enrich.fields import OBJECTS
    from ilyd.salesforce.versions import DEFAULT_API_VERSION

    objects: tuple[str, ...] = OBJECTS
    api_version = DEFAULT_API_VERSION
    if args.config:
        loaded = load_org(args.config, args.org, "fields package")
        if loaded is None:
            return EXIT_USAGE
        objects, api_version = loaded[1].objects, loaded[1].api_version
    out = Path(args.out)
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in sorted(package_files(objects, api_version=api_version).items()):
                # A --metadata-zip deploy expects the package in a top-level folder.
                archive.writestr(f"ily_fields/{name}", data)
    except OSError as exc:
        print(f"ilyd fields package: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {out}: Ily fields on {', '.join(objects)}.\n"
          f"deploy it:  sf project deploy start --metadata-zip {out}"
          " --target-org <alias>\n"
          f"then:       ilyd ctl provision {args.org}   (grants the integration user"
          " field-level security)")
    return 0
