"""How often the DNS provider's technographics are right: precision and recall per category.

Run from the repository root:  .venv/bin/python bench/technographics.py [--misses]

Serves bench/data/technographics.zone (company-like domains on reserved names, each set
up the way the vendors' guides tell their customers) from a real DNS server on loopback,
looks every company up with the DNS provider, and compares what it found, per category,
with bench/data/technographics_truth.toml (what a knowledgeable admin concludes). Also
measures the published-IP-range lookup (microseconds per address). `make test` runs the
same evaluation (tests/enrich/test_technographics.py) and holds it to the goal.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilyd.enrich.dns_provider import SEPARATOR, DnsProvider, DnsSettings
from ilyd.enrich.ip_ranges import load_ip_ranges
from ilyd.enrich.signatures import CATEGORY_FIELDS, Category
from tests.enrich.conftest import ZoneServer

DATA = Path(__file__).resolve().parent / "data"
ZONE = DATA / "technographics.zone"
TRUTH = DATA / "technographics_truth.toml"
# The goal the evaluation is held to (tests/enrich/test_technographics.py).
GOAL_PRECISION = 0.99
GOAL_RECALL = 0.97


@dataclass
class Score:
    """True positives, false positives and false negatives of one category (or all)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Evaluation:
    """Scores per category and overall, over `domains` companies."""

    domains: int
    categories: dict[Category, Score]
    overall: Score


def load_truth(path: Path = TRUTH) -> dict[str, dict[Category, set[str]]]:
    """Each domain's expected products per category (a category left out means none)."""
    data = tomllib.loads(path.read_text("utf-8"))
    return {domain: {Category(k): set(v) for k, v in row.items()}
            for domain, row in data.items()}


def found_products(values: dict[str, object]) -> dict[Category, set[str]]:
    """The products a lookup wrote, per category."""
    return {category: set(str(values[api_name]).split(SEPARATOR))
            for category, api_name in CATEGORY_FIELDS.items() if values.get(api_name)}


def evaluate(port: int, truth: dict[str, dict[Category, set[str]]]) -> Evaluation:
    """Look every domain up through the DNS server on `port` and score it against `truth`."""
    provider = DnsProvider(DnsSettings(nameservers=("127.0.0.1",), port=port,
                                       query_timeout_seconds=2.0, budget_seconds=10.0))
    categories = {category: Score() for category in Category}
    overall = Score()
    for domain, expected in truth.items():
        found = found_products(dict(provider.lookup(domain).values))
        for category, score in categories.items():
            want, got = expected.get(category, set()), found.get(category, set())
            for product, kind in ([(p, "fp") for p in got - want]
                                  + [(p, "fn") for p in want - got]):
                score.misses.append(f"{kind} {domain} {category}: {product}")
            for target in (score, overall):
                target.tp += len(want & got)
                target.fp += len(got - want)
                target.fn += len(want - got)
    overall.misses = [m for s in categories.values() for m in s.misses]
    return Evaluation(len(truth), categories, overall)


def range_lookup_microseconds(count: int = 200_000) -> float:
    """Mean time to look a random IPv4 address up in the published ranges."""
    ranges = load_ip_ranges()
    rng = random.Random(7)
    addresses = [".".join(str(rng.randrange(1, 255)) for _ in range(4)) for _ in range(count)]
    started = time.perf_counter()
    for address in addresses:
        ranges.lookup(address)
    return (time.perf_counter() - started) / count * 1e6


def report(evaluation: Evaluation) -> str:
    """The figures as a table."""
    lines = [f"{'category':<16}{'precision':>10}{'recall':>8}{'tp':>6}{'fp':>5}{'fn':>5}"]
    rows = [(c.value, s) for c, s in evaluation.categories.items()]
    rows.append(("overall", evaluation.overall))
    lines += [f"{name:<16}{s.precision:>10.3f}{s.recall:>8.3f}{s.tp:>6}{s.fp:>5}{s.fn:>5}"
              for name, s in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every wrong product")
    args = parser.parse_args()
    truth = load_truth()
    server = ZoneServer(ZONE.read_text("utf-8"))
    try:
        started = time.perf_counter()
        evaluation = evaluate(server.port, truth)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    print(f"{evaluation.domains} domains looked up in {elapsed:.2f} s")
    print(report(evaluation))
    goal = (evaluation.overall.precision >= GOAL_PRECISION
            and evaluation.overall.recall >= GOAL_RECALL)
    print(f"goal (precision >= {GOAL_PRECISION}, recall >= {GOAL_RECALL}): "
          f"{'met' if goal else 'NOT met'}")
    ranges = load_ip_ranges()
    print(f"published IP ranges: {len(ranges)} prefixes from {len(ranges.lists)} providers; "
          f"lookup {range_lookup_microseconds():.2f} µs per address")
    if args.misses:
        print("\n".join(evaluation.overall.misses) or "no misses")


if __name__ == "__main__":
    main()
