"""Run one resync in a process of its own (the SIGKILL test kills it mid-sync).

Usage: python resync_child.py LOGIN_URL CLIENT_ID CLIENT_SECRET REFRESH_TOKEN ORG DB
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import DatasetSettings, sample_dataset_path
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncRequest
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.record_hashes import RecordHashStore

from .conftest import FAST


def main(login_url: str, client_id: str, secret: str, refresh: str, org: str, db: str) -> None:
    """Begin and run a resync of Accounts."""
    tokens = make_token_provider("refresh_token", login_url=login_url, client_id=client_id,
                                 client_secret=secret, refresh_token=refresh, org=org)
    rest = RestClient(org, tokens, export_usage=False)
    database = Database(db)
    engine = Resync(org, rest, DatasetProvider(DatasetSettings(path=sample_dataset_path())),
                    store=ResyncStore(database), hashes=RecordHashStore(database),
                    settings=replace(FAST, page_size=200),
                    integration_user_id=rest.token.user_id, export_metrics=False)
    engine.begin(ResyncRequest(("Account",)))
    engine.run()


if __name__ == "__main__":
    main(*sys.argv[1:7])
