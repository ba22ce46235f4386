"""One record in, the Ily values to write out: domain → provider → coerced values.

`enrich_record` is the whole per-record pipeline the enricher workers run, free of
threads and Salesforce I/O so it can be tested directly:

- no usable domain → Match Status "Free Email" or "Invalid Domain", no provider call;
- provider found the company → "Matched" with its values;
- provider knows nothing → "Not Found"; provider proved the domain dead → "Invalid Domain";
- provider failed for good → "Error" (company values left as they are);
- provider failed for now → a retryable outcome with nothing to write: the record stays
  in the inbox and is tried again.

For Matched / Not Found / Free Email / Invalid Domain every data field of the catalogue
is in `values` (None clears it), so stale company data never survives a change of
Website. Every value is coerced to its field's type and size (`ilyd.enrich.coerce`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import structlog

from ilyd.enrich import fields as catalogue
from ilyd.enrich.coerce import coerce_value, format_datetime
from ilyd.enrich.domain import DomainResult, record_domain
from ilyd.enrich.provider import Lookup, MatchStatus, Provider
from ilyd.errors import ProviderError

__all__ = ["EnrichmentOutcome", "enrich_record", "enrich_records", "outcome_from_lookup"]

log = structlog.get_logger(__name__)

_EMPTY: Mapping[str, object] = MappingProxyType({})
# One encoder for every fingerprint (json.dumps builds one per call for these options);
# coerced values hold no cycle to look for.
_FINGERPRINT_ENCODER = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"),
                                        check_circular=False)


@dataclass(frozen=True)
class EnrichmentOutcome:
    """What enriching one record decided.

    `values` maps Ily API names to coerced values ready for an sObject update (empty
    when `retryable`). `status` is None only for a retryable failure. `domain` is the
    looked-up (or free-mail) domain, `domain_source` the field it came from, `source`
    the provider that answered, `error` the provider's message when it failed.
    """

    sobject: str
    status: MatchStatus | None
    values: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    domain: str | None = None
    domain_source: str | None = None
    source: str | None = None
    error: str | None = None
    error_reason: str | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        """True when nothing should be written and the record tried again later."""
        return self.status is None

    def fingerprint(self) -> str:
        """A stable hash of the values except Last Enriched, for skip-if-unchanged.

        Kept once computed (the writer asks before sending and again when confirming;
        outcomes are shared by the records of one domain): the values never change.
        """
        known: str | None = self.__dict__.get("_fingerprint")
        if known is None:
            parts = self.__dict__.get("_parts")
            known = (_fingerprint(self.values) if parts is None
                     else _parts_fingerprint(*parts))
            object.__setattr__(self, "_fingerprint", known)  # frozen: not a field
        return known


def _fingerprint(values: Mapping[str, object]) -> str:
    stable = dict(values)
    stable.pop(catalogue.LAST_ENRICHED.api_name, None)
    encoded = _FINGERPRINT_ENCODER.encode(stable)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


# Fingerprints by the two memoised mappings an outcome's values are made of (below): the
# records of one company share them, and each writer confirmation stores a fingerprint.
# An entry holds both mappings, so their ids cannot name other objects while it lives.
_fingerprint_memo: dict[tuple[int, int],
                        tuple[Mapping[str, object], Mapping[str, object], str]] = {}


def _parts_fingerprint(fixed: Mapping[str, object], data: Mapping[str, object]) -> str:
    key = (id(fixed), id(data))
    known = _fingerprint_memo.get(key)
    if known is not None and known[0] is fixed and known[1] is data:
        return known[2]
    # As `_fingerprint` of the values: Last Enriched, the one other value, is left out.
    fingerprint = _fingerprint({**fixed, **data})
    if len(_fingerprint_memo) >= _MEMO_SIZE:
        _fingerprint_memo.clear()
    _fingerprint_memo[key] = (fixed, data, fingerprint)
    return fingerprint


@functools.cache
def _data_fields(sobject: str) -> tuple[catalogue.IlyField, ...]:
    return tuple(f for f in catalogue.DATA_FIELDS if sobject in f.objects)


_DATA_NAMES = frozenset(f.api_name for f in catalogue.DATA_FIELDS)


# Coerced values by their inputs. The real-time stream asks about the same companies
# again and again (and most records of a resync chunk share a few), and coercing a
# company's dozen-odd fields was most of a record's enrichment CPU. Plain dicts, emptied
# when full (no LRU bookkeeping per hit); the values in them are never mutated.
_MEMO_SIZE = 4096
_data_memo: dict[tuple[object, ...], Mapping[str, object]] = {}
_meta_memo: dict[tuple[object, ...], Mapping[str, object]] = {}
_data_by_id: dict[tuple[str, int], tuple[Mapping[str, object], Mapping[str, object]]] = {}


def _remember(memo: dict[tuple[object, ...], Mapping[str, object]], key: tuple[object, ...],
              values: Mapping[str, object]) -> Mapping[str, object]:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = values
    return values


_LAST_ENRICHED = catalogue.LAST_ENRICHED.api_name
_new_object = object.__new__
# Every field of an outcome that has a plain default, with it (`_decided` sets the rest).
_OUTCOME_DEFAULTS: Mapping[str, object] = MappingProxyType({
    f.name: f.default for f in dataclasses.fields(EnrichmentOutcome)
    if f.default is not dataclasses.MISSING})


def _decided(sobject: str, status: MatchStatus, domain: DomainResult, source: str | None,
             *, now: datetime, provided: Mapping[str, object] | None,
             **others: object) -> EnrichmentOutcome:
    """The outcome of `status`: its match values (domain, status, source), Last Enriched
    stamped `now` and, unless `provided` is None (an Error leaves the company values as
    they are), every data field coerced from `provided`. It keeps the two memoised
    mappings its values are made of, for its fingerprint."""
    key = (sobject, status, domain.domain, source)
    fixed = _meta_memo.get(key)
    if fixed is None:
        raw = {catalogue.DOMAIN: domain.domain, catalogue.MATCH_STATUS: status.value,
               catalogue.SOURCE: source}
        fixed = _remember(_meta_memo, key, {f.api_name: coerce_value(f, v)
                                            for f, v in raw.items() if sobject in f.objects})
    data = _EMPTY if provided is None else _data_values(sobject, provided)
    if sobject in catalogue.LAST_ENRICHED.objects:
        # What coerce_value makes of a datetime for this DateTime field, without its
        # dispatch: this runs for every record.
        values = {**fixed, _LAST_ENRICHED: format_datetime(now), **data}
    else:
        values = {**fixed, **data}
    # The dataclass's __init__ sets each field through object.__setattr__ (it is frozen);
    # filling the new object's __dict__ at once makes the same outcome for less than
    # half the CPU. `_parts` is not a field: see `fingerprint`.
    outcome = _new_object(EnrichmentOutcome)
    outcome.__dict__.update({
        **_OUTCOME_DEFAULTS, "sobject": sobject, "status": status,
        "values": MappingProxyType(values), "domain": domain.domain,
        "domain_source": domain.source, "source": source, **others, "_parts": (fixed, data),
    })
    return outcome


def _data_values(sobject: str, provided: Mapping[str, object]) -> Mapping[str, object]:
    """Every data field of `sobject`, coerced from `provided` (the same mapping for the
    same inputs: callers only read it)."""
    # A provider that keeps its answers (the dataset) hands the same mapping for the same
    # company: known by identity, without hashing its values. The entry holds the
    # mapping, so its id cannot name another object while the entry lives.
    by_id = _data_by_id.get((sobject, id(provided)))
    if by_id is not None and by_id[0] is provided:
        return by_id[1]
    # With each value's type: 1, 1.0 and True are equal keys but coerce differently.
    key: tuple[object, ...] = (sobject, *((k, type(v), v) for k, v in provided.items()))
    try:
        values = _data_memo.get(key)
    except TypeError:  # an unhashable value (a list of products): coerce it every time
        return _coerce_data(sobject, provided)
    if values is None:
        values = _remember(_data_memo, key, _coerce_data(sobject, provided))
    if isinstance(provided, MappingProxyType):  # read-only: its values cannot change
        if len(_data_by_id) >= _MEMO_SIZE:
            _data_by_id.clear()
        _data_by_id[(sobject, id(provided))] = (provided, values)
    return values


def _coerce_data(sobject: str, provided: Mapping[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for ily_field in _data_fields(sobject):
        values[ily_field.api_name] = coerce_value(ily_field, provided.get(ily_field.api_name))
    if not provided:
        return values
    unknown = set(provided) - _DATA_NAMES
    if unknown:
        # A mapping naming a field we do not manage is a config slip, not worth failing on.
        log.debug("provider_values_ignored", fields=sorted(unknown))
    return values


def _no_domain_outcome(sobject: str, result: DomainResult, now: datetime) -> EnrichmentOutcome:
    return _decided(sobject, result.match_status or MatchStatus.INVALID_DOMAIN, result, None,
                    now=now, provided=_EMPTY)


def outcome_from_lookup(
    sobject: str, domain: DomainResult, lookup: Lookup | ProviderError | Exception, now: datetime
) -> EnrichmentOutcome:
    """Turn one provider answer (or failure) for a record's domain into its outcome."""
    if isinstance(lookup, ProviderError) and lookup.retryable:
        return EnrichmentOutcome(
            sobject=sobject, status=None, domain=domain.domain, domain_source=domain.source,
            error=str(lookup), error_reason=lookup.reason, retry_after=lookup.retry_after,
        )
    if isinstance(lookup, Exception):
        reason = lookup.reason if isinstance(lookup, ProviderError) else "provider_bug"
        return _decided(sobject, MatchStatus.ERROR, domain, None, now=now, provided=None,
                        error=str(lookup), error_reason=reason)
    if lookup.found:
        status = MatchStatus.MATCHED
        provided: Mapping[str, object] = lookup.values
        if lookup.evidence and not provided.get(catalogue.TECHNOLOGY_EVIDENCE.api_name):
            provided = {**provided, catalogue.TECHNOLOGY_EVIDENCE.api_name: lookup.evidence}
    else:
        status = MatchStatus.INVALID_DOMAIN if lookup.invalid else MatchStatus.NOT_FOUND
        provided = _EMPTY
    return _decided(sobject, status, domain, lookup.provider, now=now, provided=provided)


def _ask(provider: Provider, domain: str) -> Lookup | Exception:
    try:
        return provider.lookup(domain)
    except ProviderError as exc:
        return exc
    except Exception as exc:
        # A provider must raise ProviderError; anything else is its bug. One record gets
        # "Error" instead of the enricher dying on every record with this domain.
        log.exception("provider_raised_unexpectedly", provider=provider.name, domain=domain)
        return exc


def enrich_record(
    sobject: str,
    fields: Mapping[str, object],
    provider: Provider,
    *,
    now: datetime | None = None,
) -> EnrichmentOutcome:
    """Work out `sobject` record `fields`' domain, look it up and build the Ily values.

    `fields` holds the record's input fields (Website, Email, …) as read from
    Salesforce. `now` stamps Last Enriched (default: the current UTC time). Never raises
    for provider failures: those become an "Error" or a retryable outcome.
    """
    moment = now or datetime.now(UTC)
    domain = record_domain(sobject, fields)
    if not domain.ok or domain.domain is None:
        return _no_domain_outcome(sobject, domain, moment)
    return outcome_from_lookup(sobject, domain, _ask(provider, domain.domain), moment)


def enrich_records(
    sobject: str,
    records: Iterable[Mapping[str, object]],
    provider: Provider,
    *,
    now: datetime | None = None,
) -> list[EnrichmentOutcome]:
    """`enrich_record` for many records, asking the provider once per distinct domain.

    Uses `provider.lookup_many` so batch-capable sources (HTTP batch endpoints) answer a
    resync page in a few calls. Outcomes come back in the records' order.
    """
    moment = now or datetime.now(UTC)
    domains = [record_domain(sobject, record) for record in records]
    wanted = list(dict.fromkeys(d.domain for d in domains if d.ok and d.domain))
    answers: Mapping[str, Lookup | ProviderError | Exception] = {}
    if wanted:
        try:
            answers = provider.lookup_many(wanted)
        except ProviderError as exc:
            answers = dict.fromkeys(wanted, exc)
        except Exception as exc:  # the provider's bug, as in _ask
            log.exception("provider_raised_unexpectedly", provider=provider.name)
            answers = dict.fromkeys(wanted, exc)
    # An outcome depends only on the domain, its reason and source field (plus the
    # provider's answer for that domain and `moment`, both fixed here): records sharing
    # them share one immutable outcome, built once. A resync chunk often holds thousands
    # of records under a few domains (or none at all).
    memo: dict[tuple[str | None, object, str | None], EnrichmentOutcome] = {}
    outcomes = []
    for domain in domains:
        key = (domain.domain, domain.reason, domain.source)
        outcome = memo.get(key)
        if outcome is None:
            outcome = memo[key] = _outcome(sobject, domain, answers, provider, moment)
        outcomes.append(outcome)
    return outcomes


def _outcome(sobject: str, domain: DomainResult,
             answers: Mapping[str, Lookup | ProviderError | Exception], provider: Provider,
             moment: datetime) -> EnrichmentOutcome:
    if not domain.ok or domain.domain is None:
        return _no_domain_outcome(sobject, domain, moment)
    answer = answers.get(domain.domain)
    if answer is None:
        answer = ProviderError(
            f"provider {provider.name!r} returned no answer for {domain.domain}",
            retryable=True, reason="missing_answer",
        )
    return outcome_from_lookup(sobject, domain, answer, moment)

