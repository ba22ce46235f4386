#!/usr/bin/env python3
"""Generate ilyd's bundled sample dataset: synthetic companies on reserved domains.

Every company is invented; every domain is under `.example` or `.test` (RFC 2606 /
RFC 6761), so nothing in the file describes a real organisation or could resolve. The
output is deterministic for a given --seed and --count, so the committed CSV only
changes when this script does. The first rows are fixed, well-known demo names
(acme.example, globex.test, …) that the demo and tests can rely on.

    python scripts/make_sample_dataset.py   # rewrites ilyd/enrich/data/sample_companies.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "ilyd" / "enrich" / "data" / "sample_companies.csv"

COLUMNS = [
    "domain", "company_name", "industry", "employee_count", "employee_range", "country",
    "cloud_hosting_provider", "cdn_provider", "dns_provider", "email_provider",
    "email_security_provider", "email_sending_services", "saas_products", "technologies",
    "monthly_spend_estimate", "traffic_rank",
]

FIXED = [
    ("acme.example", "Acme Corporation", "Manufacturing", 12000, "US"),
    ("globex.test", "Globex Corporation", "Energy", 8500, "US"),
    ("initech.example", "Initech", "Software", 450, "US"),
    ("umbrella.test", "Umbrella Corporation", "Pharmaceuticals", 60000, "GB"),
    ("hooli.example", "Hooli", "Internet", 32000, "US"),
    ("piedpiper.test", "Pied Piper", "Software", 35, "US"),
    ("stark-industries.example", "Stark Industries", "Aerospace & Defense", 90000, "US"),
    ("wayne-enterprises.test", "Wayne Enterprises", "Conglomerate", 150000, "US"),
    ("cyberdyne.example", "Cyberdyne Systems", "Robotics", 2200, "US"),
    ("soylent.test", "Soylent Corporation", "Food & Beverage", 5400, "CA"),
    ("tyrell.example", "Tyrell Corporation", "Biotechnology", 18000, "JP"),
    ("wonka.test", "Wonka Industries", "Food & Beverage", 900, "GB"),
    ("vandelay.example", "Vandelay Industries", "Import & Export", 12, "US"),
    ("bluth.test", "Bluth Company", "Real Estate", 140, "US"),
    ("dunder-mifflin.example", "Dunder Mifflin", "Paper & Packaging", 1200, "US"),
    ("oceanic.test", "Oceanic Airlines", "Airlines", 24000, "AU"),
]

SYLLABLES = ["al", "bar", "cor", "dex", "el", "fin", "gra", "hal", "is", "jun", "kor", "lum",
             "mar", "nov", "or", "pra", "quin", "ros", "sol", "tor", "ul", "ver", "wex", "xan",
             "yor", "zen", "tri", "vo", "lex", "nex", "ar", "mi", "ta", "ri", "on", "ex"]
WORDS = ["Blue", "North", "River", "Summit", "Bright", "Iron", "Silver", "Cedar", "Harbor",
         "Pioneer", "Atlas", "Orbit", "Quartz", "Maple", "Falcon", "Granite", "Coral", "Nimbus",
         "Beacon", "Crescent", "Vertex", "Meridian", "Aurora", "Prairie", "Lumen", "Keystone"]
SUFFIXES = ["Labs", "Systems", "Group", "Holdings", "Technologies", "Partners", "Industries",
            "Solutions", "Works", "Analytics", "Logistics", "Foods", "Health", "Energy",
            "Capital", "Networks", "Robotics", "Media", "Studios", "Bank"]
LEGAL = {"US": ["Inc.", "LLC", "Corp."], "GB": ["Ltd", "plc"], "DE": ["GmbH", "AG"],
         "FR": ["SAS", "SA"], "NL": ["B.V."], "JP": ["K.K."], "CA": ["Inc.", "Ltd."],
         "AU": ["Pty Ltd"], "IN": ["Pvt. Ltd."], "BR": ["Ltda."], "SE": ["AB"], "ES": ["S.L."],
         "IT": ["S.p.A."], "SG": ["Pte. Ltd."], "IE": ["Ltd"], "CH": ["AG"]}
COUNTRY_WEIGHTS = {"US": 40, "GB": 9, "DE": 8, "FR": 6, "CA": 5, "NL": 4, "JP": 4, "AU": 4,
                   "IN": 5, "BR": 3, "SE": 2, "ES": 3, "IT": 3, "SG": 2, "IE": 1, "CH": 1}
INDUSTRIES = ["Software", "Internet", "IT Services", "Financial Services", "Banking",
              "Insurance", "Healthcare", "Pharmaceuticals", "Biotechnology", "Manufacturing",
              "Retail", "E-commerce", "Logistics", "Telecommunications", "Media",
              "Education", "Energy", "Construction", "Real Estate", "Food & Beverage",
              "Automotive", "Aerospace & Defense", "Hospitality", "Legal Services",
              "Marketing & Advertising", "Non-profit", "Government", "Consulting"]
RANGES = [(10, "1-10"), (50, "11-50"), (200, "51-200"), (500, "201-500"), (1000, "501-1000"),
          (5000, "1001-5000"), (10000, "5001-10000"), (math.inf, "10001+")]
CLOUD = [("Amazon Web Services", 40), ("Microsoft Azure", 20), ("Google Cloud", 15),
         ("DigitalOcean", 5), ("OVHcloud", 4), ("Hetzner", 4), ("Oracle Cloud", 3),
         ("IBM Cloud", 2), ("", 7)]
CDN = [("Cloudflare", 35), ("Amazon CloudFront", 20), ("Akamai", 15), ("Fastly", 8),
       ("Azure Front Door", 5), ("Google Cloud CDN", 4), ("", 13)]
DNS = [("Amazon Route 53", 30), ("Cloudflare DNS", 30), ("Azure DNS", 10),
       ("Google Cloud DNS", 8), ("NS1", 4), ("GoDaddy", 8), ("UltraDNS", 3), ("Akamai Edge DNS", 3),
       ("", 4)]
EMAIL = [("Google Workspace", 45), ("Microsoft 365", 45), ("Zoho Mail", 4), ("Fastmail", 1),
         ("Rackspace Email", 2), ("", 3)]
EMAIL_SECURITY = [("Proofpoint", 12), ("Mimecast", 10), ("Barracuda", 5),
                  ("Cisco Secure Email", 3), ("", 70)]
SENDING = ["SendGrid", "Mailgun", "Amazon SES", "Mailchimp", "Postmark", "HubSpot",
           "Salesforce Marketing Cloud", "Marketo", "Zendesk", "Brevo", "SparkPost"]
SAAS = ["Atlassian", "Slack", "DocuSign", "Zoom", "Salesforce", "HubSpot", "Notion", "Figma",
        "Miro", "Dropbox", "Box", "Okta", "Adobe", "Zendesk", "Asana", "Airtable", "Canva",
        "Smartsheet", "Twilio", "Segment", "OneTrust", "Wiz", "Linear", "Loom"]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    names, weights = zip(*weighted, strict=True)
    return rng.choices(names, weights=weights)[0]


def _range(count: int) -> str:
    return next(label for limit, label in RANGES if count <= limit)


def _name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    else:
        stem = f"{rng.choice(WORDS)}{rng.choice(WORDS).lower()}"
    return f"{stem} {rng.choice(SUFFIXES)}" if rng.random() < 0.7 else stem


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _row(rng: random.Random, company: tuple[str, str, str, int, str], *,
         holes: bool = True) -> dict[str, object]:
    domain, name, industry, employees, country = company
    cloud = _pick(rng, CLOUD)
    cdn = _pick(rng, CDN)
    dns = _pick(rng, DNS)
    email = _pick(rng, EMAIL)
    security = _pick(rng, EMAIL_SECURITY) if employees > 50 else ""
    size = employees.bit_length()
    sending = rng.sample(SENDING, k=min(len(SENDING), rng.randint(0, 1 + size // 4)))
    saas = rng.sample(SAAS, k=min(len(SAAS), rng.randint(0, 2 + size // 3)))
    tech = [f"{p} ({c})" for p, c in (
        (cloud, "Cloud Hosting"), (cdn, "CDN"), (dns, "DNS"), (email, "Email Hosting"),
        (security, "Email Security"),
    ) if p]
    tech += [f"{s} (Email Sending)" for s in sending] + [f"{s} (SaaS)" for s in saas]
    # Spend grows with size, with a long tail; rank (1 = busiest) shrinks with size.
    spend = round(employees * rng.uniform(8, 60) * (1.5 if cloud else 0.6), -1)
    rank = max(1, int(2_000_000 / (employees ** 0.8) * rng.uniform(0.3, 3)))
    row: dict[str, object] = {
        "domain": domain, "company_name": name, "industry": industry,
        "employee_count": employees, "employee_range": _range(employees), "country": country,
        "cloud_hosting_provider": cloud, "cdn_provider": cdn, "dns_provider": dns,
        "email_provider": email, "email_security_provider": security,
        "email_sending_services": "; ".join(sending), "saas_products": "; ".join(saas),
        "technologies": "; ".join(tech), "monthly_spend_estimate": int(spend),
        "traffic_rank": rank,
    }
    # Real datasets have holes: blank a few firmographic cells (not in the fixed demo rows).
    for column in ("industry", "employee_count", "country", "monthly_spend_estimate",
                   "traffic_rank"):
        if holes and rng.random() < 0.04:
            row[column] = ""
    if row["employee_count"] == "":
        row["employee_range"] = ""
    return row


def generate(count: int, seed: int) -> list[dict[str, object]]:
    """`count` synthetic companies, the fixed demo ones first; deterministic per seed."""
    rng = random.Random(seed)
    rows = [_row(rng, company, holes=False) for company in FIXED]
    seen = {row["domain"] for row in rows}
    countries, weights = zip(*COUNTRY_WEIGHTS.items(), strict=True)
    while len(rows) < count:
        country = rng.choices(countries, weights=weights)[0]
        name = _name(rng)
        domain = f"{_slug(name)}.{rng.choice(['example', 'test'])}"
        if domain in seen:
            continue
        seen.add(domain)
        employees = max(1, int(math.exp(rng.uniform(0, math.log(200_000)))))
        legal = rng.choice(LEGAL[country])
        company = (domain, f"{name} {legal}", rng.choice(INDUSTRIES), employees, country)
        rows.append(_row(rng, company))
    return rows


def main() -> int:
    """Write the CSV (default: the bundled sample) and say how many rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = generate(args.count, args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{args.out}: {len(rows)} companies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
