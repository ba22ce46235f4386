"""Reloads of a running daemon (`ilyd run`) against devorg: a config mistake never takes a
running org down, secret files are read again, an org not connected yet says how to."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from tests.daemon.conftest import DaemonProcess
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import password_org_toml
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import SalesforceUser

dev = devorg_fixture(orgs=2)


@pytest.fixture
def write_devorg_config(workdir: Path, dev: DevOrg) -> Callable[..., Path]:
    """A config with a password-auth [[org]] per given devorg org, in one process or
    shared over worker processes."""

    def write(*infos: OrgInfo, processes: int = 1) -> Path:
        text = (f'[daemon]\nstate_dir = "{workdir}/state"\ncontrol_socket = "{workdir}/ctl.sock"\n'
                f'processes = {processes}\n[metrics]\nlisten = "127.0.0.1:0"\n')
        text += "".join(password_org_toml(workdir, dev, info, "poll_interval = 5\n")
                        for info in infos)
        path = workdir / "ilyd.toml"
        path.write_text(text)
        return path

    return write


def create_account(user: SalesforceUser) -> str:
    return user.create("Account", Name="Globex", Website="https://globex.test")


def enriched(user: SalesforceUser, record_id: str) -> bool:
    return bool(user.record(record_id).get("Ily_Match_Status__c"))


@pytest.fixture
def users(dev: DevOrg) -> Iterator[list[SalesforceUser]]:
    made = [SalesforceUser(dev, info) for info in dev.orgs]
    yield made
    for user in made:
        user.session.close()


def reload_metric(daemon: DaemonProcess) -> str:
    body = requests.get(daemon.ctl_json("status")["metrics_url"], timeout=10).text
    (line,) = [x for x in body.splitlines()
               if x.startswith("ilyd_config_last_reload_successful ")]
    return line.split()[1]


def orgs(daemon: DaemonProcess) -> dict[str, dict[str, object]]:
    return {org["name"]: org for org in daemon.ctl_json("orgs")}


def wait_connected(daemon: DaemonProcess, name: str) -> None:
    """Until the org listens for changes: a record created earlier raises no event."""
    def connected() -> bool:
        detail = orgs(daemon)[name]["detail"]
        return isinstance(detail, dict) and detail.get("connection") == "connected"

    wait_until(connected, timeout=30, what=f"{name} connected")


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "worker-processes"])
def test_an_org_mistake_fails_the_reload_and_the_running_org_keeps_its_config(
        dev, write_devorg_config, start_daemon, workdir, users, processes):
    alpha, beta = dev.orgs
    config = write_devorg_config(alpha, beta, processes=processes)
    good = config.read_text()

    # At the first start there is no previous config: the bad org is in config_error,
    # the others run.
    (workdir / f"{beta.name}.secret").chmod(0o644)
    daemon = start_daemon(config)
    wait_until(lambda: daemon.org_states() == {alpha.name: "running", beta.name: "config_error"},
               what="alpha running, beta in config_error")
    assert "world-readable" in str(orgs(daemon)[beta.name]["last_error"])
    (workdir / f"{beta.name}.secret").chmod(0o600)
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: daemon.org_states() == {alpha.name: "running", beta.name: "running"},
               what="both orgs running")

    # A typo in an [[org]]: `ilyd ctl reload` (systemd's ExecReload) fails naming it.
    config.write_text(good.replace("client_secret_file", "client_secert_file", 1))
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 1, done.stdout
    assert "is invalid; still running generation 2" in done.stderr
    assert ("org[0].client_secert_file: unknown key (did you mean client_secret_file?)"
            in done.stderr)
    assert reload_metric(daemon) == "0.0"
    assert daemon.ctl_json("status")["generation"] == 2
    assert daemon.org_states() == {alpha.name: "running", beta.name: "running"}
    assert orgs(daemon)[alpha.name]["restarts"] == 0

    config.write_text(good)
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 0, done.stderr
    assert reload_metric(daemon) == "1.0"

    # A secret file left world-readable: SIGHUP is refused the same way.
    (workdir / f"{alpha.name}.secret").chmod(0o644)
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: reload_metric(daemon) == "0.0", what="the SIGHUP reload to fail")
    assert daemon.ctl_json("status")["generation"] == 3
    assert daemon.org_states() == {alpha.name: "running", beta.name: "running"}
    assert orgs(daemon)[alpha.name]["restarts"] == 0
    done = daemon.ctl("reload")
    assert done.returncode == 1
    assert f"org[0].client_secret_file: secret file {workdir}/{alpha.name}.secret is" \
           " world-readable (mode 0644)" in done.stderr

    # The org still works on the config it kept.
    wait_connected(daemon, alpha.name)
    record = create_account(users[0])
    wait_until(lambda: enriched(users[0], record), timeout=30, what="the record enriched")
    status, out, err = daemon.stop()
    assert status == 0
    assert "config_reload_refused" in out + err


def test_a_reload_reads_the_secret_files_again(dev, write_devorg_config, start_daemon, workdir,
                                               users):
    alpha = dev.orgs[0]
    daemon = start_daemon(write_devorg_config(alpha))
    wait_connected(daemon, alpha.name)
    record = create_account(users[0])
    wait_until(lambda: enriched(users[0], record), timeout=30, what="the record enriched")

    # A changed client secret is picked up: here a wrong one, which Salesforce refuses.
    secret = workdir / f"{alpha.name}.secret"
    secret.write_text("not-the-client-secret")
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: "invalid_client" in json.dumps(orgs(daemon)[alpha.name]),
               what="the org to fail with invalid_client")
    assert orgs(daemon)[alpha.name]["restarts"] == 1

    # The right secret restored and reloaded: the org recovers, without ilyd ctl restart.
    secret.write_text(alpha.client_secret)
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 0, done.stderr
    wait_connected(daemon, alpha.name)
    record = create_account(users[0])
    wait_until(lambda: enriched(users[0], record), timeout=30,
               what="a record enriched after the fix")
    assert "invalid_client" not in json.dumps(orgs(daemon)[alpha.name])
    assert daemon.stop()[0] == 0


def test_an_org_started_before_ilyd_connect_says_to_run_it(dev, start_daemon, workdir):
    info = dev.orgs[0]
    config = workdir / "ilyd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{workdir}/state"\ncontrol_socket = "{workdir}/ctl.sock"\n'
        f'processes = 1\n[metrics]\nlisten = ""\n[[org]]\nname = "{info.name}"\n'
        f'environment = "{dev.url}"\nclient_id = "{info.client_id}"\n')
    daemon = start_daemon(config)
    error = wait_until(lambda: orgs(daemon)[info.name]["last_error"],
                       what="the org's start to fail")
    assert f"run `ilyd connect {info.name} --config {config}`" in str(error)
    assert "does not exist" not in str(error)
    status, out, err = daemon.stop()
    assert status == 0
    assert "config_warning" in out + err
