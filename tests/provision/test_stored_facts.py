"""The facts a start stores in the state database are read back as they were read from
the org, and only for the org the token signs in to (a refreshed sandbox has a new id)."""

from __future__ import annotations

from pathlib import Path

from ilyd.provision.facts import gather
from ilyd.provision.feed import POLLING, STREAMING, decide_feed, remember, stored_facts
from ilyd.store import Database
from ilyd.store.org_facts import OrgFactsStore

from .conftest import Env


def test_stored_facts_read_back_equal_those_read_from_the_org(tmp_path: Path,
                                                              env: Env) -> None:
    env.provisioner().provision()
    facts = gather(env.rest, ("Account", "Lead"))
    database = Database(tmp_path / "ilyd.db")
    remember(OrgFactsStore(database), "acme", facts)
    back = stored_facts(OrgFactsStore(database), "acme", env.rest.token.org_id)
    database.close()
    assert back == facts
    assert decide_feed(back, ("Account", "Lead"), "auto") == STREAMING


def test_facts_stored_for_another_org_id_are_not_used(tmp_path: Path, env: Env) -> None:
    facts = gather(env.rest, ("Account", "Lead"))
    database = Database(tmp_path / "ilyd.db")
    remember(OrgFactsStore(database), "acme", facts)
    assert stored_facts(OrgFactsStore(database), "acme", "00D000000000OTHER") is None
    assert stored_facts(OrgFactsStore(database), "acme", facts.org_id, checked=True) is None
    database.close()


def test_an_org_configured_to_poll_or_without_streaming_is_fed_by_polling(env: Env) -> None:
    env.provisioner().provision()
    objects = ("Account", "Lead")
    assert decide_feed(gather(env.rest, objects), objects, "polling") == POLLING
    env.admin("PATCH", "/settings", {"streaming_enabled": False})
    assert decide_feed(gather(env.rest, objects), objects, "auto") == POLLING
