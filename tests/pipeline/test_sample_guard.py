"""The bundled synthetic sample never enriches a real org by accident: `ilyd run` against a
devorg reached on a non-loopback address (a Salesforce org as far as ilyd can tell)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.config import OrgConfig, load_config
from ilyd.control.client import ControlClient, DaemonNotRunningError
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.errors import ControlError
from ilyd.pipeline.providers import sample_refusal
from tests.helpers.devorg_process import start_devorg
from tests.helpers.orgs import password_org_toml
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

OPT_IN = '[[org.enrich.provider]]\ntype = "dataset"\npath = "@sample"\nallow_real_org = true\n'


def outward_address() -> str | None:
    """This machine's address on its outward interface, if it has one (no packet sent)."""
    for target in ("198.51.100.1", "10.255.255.254"):  # documentation/private ranges
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            address = str(probe.getsockname()[0])
        if not address.startswith("127."):
            return address
    return None


@pytest.fixture
def remote_dev(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevOrg]:
    """devorg with TLS on a non-loopback address: ilyd has no way to tell it from Salesforce.
    Its CA is trusted through ca_file alone (a host-wide bundle must not override it)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    address = outward_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    with start_devorg(host=address, tls=True) as server:
        yield server


def write_real_org_config(tmp_path: Path, dev: DevOrg, info: OrgInfo, org_extra: str = ""
                          ) -> Path:
    assert dev.ca_file is not None
    path = tmp_path / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
                    f'control_socket = "{tmp_path}/control.sock"\nlog_format = "json"\n'
                    '[metrics]\nlisten = ""\n'
                    + password_org_toml(tmp_path, dev, info,
                                        f'ca_file = "{dev.ca_file}"\npoll_interval = 5\n'
                                        + org_extra))
    return path


def org_row(daemon: Daemon, name: str) -> dict[str, Any]:
    result = ControlClient(daemon.socket, timeout=10).call("orgs")
    rows = result["orgs"] if isinstance(result, dict) else result
    return next(dict(r) for r in rows if r["name"] == name)


def test_an_org_that_is_not_a_devorg_org_refuses_the_sample_and_no_record_is_written(
        tmp_path: Path, remote_dev: DevOrg) -> None:
    info = remote_dev.orgs[0]
    user = SalesforceUser(remote_dev, info)
    user.session.verify = str(remote_dev.ca_file)
    user.session.trust_env = False
    account = user.create("Account", Name="Salesforce", Website="https://www.salesforce.com")
    config = write_real_org_config(tmp_path, remote_dev, info)
    daemon = Daemon(config)
    daemon.start()
    try:
        row = wait_until(lambda: (r := _quietly(daemon, info.name)) and r["last_error"] and r,
                         timeout=30, what="the org refused")
        assert row["state"] != "running"
        assert "bundled synthetic sample" in row["last_error"]
        assert "allow_real_org = true" in row["last_error"]
        assert "Choose your enrichment source" in row["last_error"]
        # Refused before any child ran: nothing was provisioned, nothing written.
        assert not any(k.startswith("Ily_") and v for k, v in user.record(account).items())
        assert [h for h in user.history(account) if h["user_id"] == info.user_id] == []

        config.write_text(config.read_text() + OPT_IN)
        ControlClient(daemon.socket, timeout=60).call("reload", {"wait": True})
        wait_until(lambda: (r := _quietly(daemon, info.name)) and r["state"] == "running"
                   and r["detail"].get("connection") == "connected", timeout=60,
                   what="the org subscribed once the sample is allowed on purpose")
        lead = user.create("Lead", LastName="L", Company="x", Email="jo@acme.example")
        wait_until(lambda: user.record(lead).get("Ily_Source__c") == "dataset", timeout=60,
                   what="the Lead enriched from the sample after the opt-in")
    finally:
        daemon.stop()


def _quietly(daemon: Daemon, name: str) -> dict[str, Any] | None:
    try:
        return org_row(daemon, name)
    except (OSError, StopIteration, DaemonNotRunningError):
        return None
    except ControlError as exc:
        if "starting" in exc.message:
            return None
        raise


def orgs_of(tmp_path: Path, *tables: tuple[str, str, str]) -> dict[str, OrgConfig]:
    """Loaded [[org]]s from (name, environment, extra TOML) triples (never connected)."""
    secret = tmp_path / "secret"
    secret.write_text("s")
    secret.chmod(0o600)
    path = tmp_path / "ilyd.toml"
    path.write_text("".join(
        f'[[org]]\nname = "{name}"\nenvironment = "{env}"\nauth = "client_credentials"\n'
        f'client_id = "id"\nclient_secret_file = "{secret}"\n{extra}'
        for name, env, extra in tables))
    return {o.name: o for o in load_config(path).orgs}


def test_the_sample_is_allowed_on_devorg_orgs_and_on_purpose_elsewhere(tmp_path: Path) -> None:
    orgs = orgs_of(tmp_path, ("prod", "https://prod.my.salesforce.com", ""),
                   ("mydomain", "https://acme.my.salesforce.com", ""),
                   ("dev", "http://127.0.0.1:8585", ""), ("local", "https://localhost:8443", ""),
                   ("chosen", "https://chosen.my.salesforce.com", OPT_IN))
    assert sample_refusal(orgs["prod"]) is not None
    assert sample_refusal(orgs["mydomain"]) is not None
    assert sample_refusal(orgs["dev"]) is None
    assert sample_refusal(orgs["local"]) is None
    assert sample_refusal(orgs["chosen"]) is None


def test_check_shows_the_sample_in_a_real_org_as_blocked_with_the_fix(tmp_path: Path) -> None:
    from ilyd.provision.checks import Status
    from ilyd.provision.source import source_check

    real = "https://acme.my.salesforce.com"
    orgs = orgs_of(tmp_path, ("prod", real, ""), ("dev", "http://127.0.0.1:8585", ""),
                   ("demo", real, OPT_IN),
                   ("own", real, '[[org.enrich.provider]]\ntype = "dns"\n'))
    blocked = source_check(orgs["prod"])
    assert blocked.status is Status.FAIL
    assert "made-up companies" in blocked.summary
    assert "Choose your enrichment source" in (blocked.fix or "")
    assert source_check(orgs["dev"]).status is Status.PASS
    assert source_check(orgs["demo"]).status is Status.WARN
    assert source_check(orgs["own"]).status is Status.PASS
    assert source_check(orgs["own"]).summary == "dns (dns)"


def test_config_check_warns_before_start_that_a_real_org_will_refuse_the_sample(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ilyd.cli import main

    orgs_of(tmp_path, ("prod", "https://prod.my.salesforce.com", ""),
            ("dev", "http://127.0.0.1:8585", ""))
    assert main(["config", "check", "--config", str(tmp_path / "ilyd.toml")]) == 0
    err = capsys.readouterr().err
    assert "warning: org prod: enrichment source: provider 'dataset' is the bundled" in err
    assert "org dev" not in err
