"""The provider registry: orgs share one instance per configured provider, behind one
cache; handles release it; a failing provider is reported to the org's status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.config.enrich import EnrichConfig, enrich_settings
from ilyd.errors import ConfigError, ProviderError
from ilyd.pipeline.providers import chain_for, find_registry, registry_for, watch_health
from ilyd.store import Database
from tests.enrich.conftest import HttpStub, Reply


@pytest.fixture
def stub() -> Iterator[HttpStub]:
    server = HttpStub()
    yield server
    server.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "vendor.key"
    path.write_text("the-key\n")
    path.chmod(0o600)
    return path


class Secrets:
    """What an org read at start (`OrgSecrets.providers`)."""

    def __init__(self, **keys: str) -> None:
        self.providers = tuple(keys.items())


def enrich(stub: HttpStub, key_file: Path, **extra: Any) -> EnrichConfig:
    vendor = {"type": "http", "name": "vendor", "url": stub.base + "/companies/{domain}",
              "auth_header": "X-Key", "secret_file": str(key_file),
              "fields": {"Ily_Company_Name__c": "name"}, "max_attempts": 1, **extra}
    return enrich_settings()({"provider": [vendor]}).resolved(key_file.parent)


def test_two_orgs_share_one_instance_and_one_request_per_domain(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    stub.route("/companies/acme.test", Reply(200, {"name": "Acme"}, delay=0.3))
    config = enrich(stub, key_file)
    first = chain_for(config, Secrets(vendor="the-key"), database)
    second = chain_for(config, Secrets(vendor="the-key"), database)
    registry = registry_for(database)
    assert registry.instances() == 1
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda p=p: answers.append(p.lookup("acme.test")))
               for p in (first, second, first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [a.values for a in answers] == [{"Ily_Company_Name__c": "Acme"}] * 3
    assert stub.hits("/companies/acme.test") == 1
    assert stub.requests[0].headers["X-Key"] == "the-key"
    stats = registry.cache.stats() if registry.cache else None
    assert stats is not None
    assert (stats.entries, stats.misses, stats.hits) == (1, 1, 2)
    assert find_registry(database.path) is registry
    first.close()
    assert registry.instances() == 1
    second.close()
    second.close()  # closing twice releases once
    assert registry.instances() == 0


def test_a_rotated_key_gets_its_own_instance(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    config = enrich(stub, key_file)
    old = chain_for(config, Secrets(vendor="old-key"), database)
    new = chain_for(config, Secrets(vendor="new-key"), database)
    assert registry_for(database).instances() == 2
    old.close()
    new.close()
    assert registry_for(database).instances() == 0


def test_one_name_with_different_settings_is_refused(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    held = chain_for(enrich(stub, key_file), Secrets(vendor="k"), database)
    try:
        with pytest.raises(ConfigError, match="'vendor' is already used by another org"):
            chain_for(enrich(stub, key_file, timeout=3), Secrets(vendor="k"), database)
    finally:
        held.close()


def test_without_secrets_given_the_key_is_read_from_its_reference(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    stub.route("/companies/acme.test", Reply(200, {"name": "Acme"}))
    provider = chain_for(enrich(stub, key_file), None, database)
    try:
        provider.lookup("acme.test")
    finally:
        provider.close()
    assert stub.requests[0].headers["X-Key"] == "the-key"


def test_a_zero_ttl_provider_is_asked_every_time(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    stub.route("/companies/acme.test", Reply(200, {"name": "Acme"}))
    provider = chain_for(enrich(stub, key_file, cache_ttl=0, negative_cache_ttl=0),
                            Secrets(vendor="k"), database)
    try:
        provider.lookup("acme.test")
        provider.lookup("acme.test")
    finally:
        provider.close()
    assert stub.hits("/companies/acme.test") == 2


def test_a_refused_key_is_published_once_as_the_org_error(
        database: Database, stub: HttpStub, key_file: Path) -> None:
    stub.route("/companies/acme.test", Reply(403, {"error": "forbidden"}))
    published: list[dict[str, Any]] = []
    provider = watch_health(chain_for(enrich(stub, key_file), Secrets(vendor="k"),
                                         database), lambda **d: published.append(d))
    try:
        for _ in range(2):
            with pytest.raises(ProviderError):
                provider.lookup("acme.test")
    finally:
        provider.close()
    (report,) = published
    assert report["provider_failing"] == "vendor"
    assert "HTTP 403" in report["provider_error"]
    assert stub.hits("/companies/acme.test") == 1
