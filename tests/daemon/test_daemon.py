"""The daemon as a real subprocess: ctl, socket, reload, signals, sd_notify, logs."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import stat
import subprocess
import threading

import requests

from .conftest import ILYD, SECRETS, wait_until


def test_ctl_status_reports_version_generation_and_orgs(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha", "beta"))
    wait_until(lambda: daemon.org_states() == {"alpha": "running", "beta": "running"},
               what="both orgs running")
    status = daemon.ctl_json("status")
    assert status["generation"] == 1
    assert status["orgs"] == {"running": 2}
    assert status["version"]
    human = daemon.ctl("orgs")
    assert human.returncode == 0
    assert human.stdout.splitlines()[0].split()[:3] == ["NAME", "STATE", "SINCE"]
    assert daemon.stop()[0] == 0


def test_control_socket_is_group_accessible_only(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha"))
    mode = stat.S_IMODE(os.stat(daemon.socket).st_mode)
    assert mode == 0o660
    assert daemon.stop()[0] == 0
    assert not daemon.socket.exists()


def test_second_daemon_on_the_same_socket_refuses_to_start(write_config, start_daemon):
    config = write_config("alpha")
    first = start_daemon(config)
    second = subprocess.run([*ILYD, "run", "--config", str(config)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert second.returncode == 1
    assert "another ilyd is already running on control socket" in second.stderr
    assert first.ctl("status").returncode == 0
    assert first.stop()[0] == 0


def test_second_daemon_on_the_same_state_directory_refuses_to_start(write_config,
                                                                    start_daemon):
    config = write_config("alpha")
    first = start_daemon(config)
    # Another control socket, the same state directory: the inbox's leases are in the
    # first daemon's memory, so a second one must not run on its database.
    other = config.with_name("other.toml")
    other.write_text(config.read_text().replace("ctl.sock", "other.sock"))
    second = subprocess.run([*ILYD, "run", "--config", str(other)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert second.returncode == 1
    assert f"another ilyd daemon (pid {first.process.pid}) uses the state directory" in (
        second.stderr)
    assert not config.with_name("other.sock").exists()
    assert first.ctl("status").returncode == 0
    assert first.stop()[0] == 0


def test_stale_socket_file_is_replaced(write_config, start_daemon):
    config = write_config("alpha")
    first = start_daemon(config)
    first.process.kill()  # leaves the socket file behind
    first.wait(30)
    assert first.socket.exists()
    second = start_daemon(config)
    assert second.ctl_json("status")["generation"] == 1
    assert second.stop()[0] == 0


def test_ctl_exits_three_when_the_daemon_is_not_running(workdir):
    done = subprocess.run([*ILYD, "ctl", "--socket", str(workdir / "none.sock"), "status"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 3
    assert "ilyd is not running" in done.stderr


def test_sighup_starts_added_org_and_stops_removed_one(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha", "beta"))
    wait_until(lambda: daemon.org_states() == {"alpha": "running", "beta": "running"},
               what="alpha and beta running")
    write_config("beta", "gamma")
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.org_states() == {"beta": "running", "gamma": "running"},
               what="beta and gamma running after SIGHUP")
    assert daemon.ctl_json("status")["generation"] == 2
    orgs = {o["name"]: o for o in daemon.ctl_json("orgs")}
    assert orgs["beta"]["restarts"] == 0  # unchanged: not restarted
    assert daemon.stop()[0] == 0


def test_broken_config_reload_keeps_the_old_one_and_ctl_fails(write_config, start_daemon):
    config = write_config("alpha")
    daemon = start_daemon(config)
    wait_until(lambda: daemon.org_states() == {"alpha": "running"}, what="alpha running")
    config.write_text(config.read_text() + "\n[[org]\nname = \n")
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 1
    assert "is invalid; still running generation 1" in done.stderr
    assert "TOML syntax error" in done.stderr
    assert daemon.ctl_json("status")["generation"] == 1
    assert daemon.org_states() == {"alpha": "running"}
    metrics_url = daemon.ctl_json("status")["metrics_url"]
    body = requests.get(metrics_url, timeout=10).text
    assert "ilyd_config_last_reload_successful 0.0" in body
    assert daemon.stop()[0] == 0


def test_reload_wait_streams_progress_and_dry_run_changes_nothing(write_config, start_daemon):
    daemon = start_daemon(write_config("alpha"))
    write_config("alpha", "beta")
    dry = daemon.ctl_json("reload", "--dry-run")
    assert dry["added"] == ["beta"]
    assert dry["dry_run"] is True
    assert daemon.ctl_json("status")["generation"] == 1
    done = daemon.ctl("reload", "--wait")
    assert done.returncode == 0, done.stderr
    assert "org=beta state=running" in done.stdout
    assert "config generation 2: applied" in done.stdout
    assert daemon.stop()[0] == 0


def test_pause_survives_a_daemon_restart(write_config, start_daemon):
    config = write_config("alpha", "beta")
    daemon = start_daemon(config)
    assert daemon.ctl_json("pause", "alpha")["state"] == "paused"
    assert daemon.stop()[0] == 0
    again = start_daemon(config)
    wait_until(lambda: again.org_states() == {"alpha": "paused", "beta": "running"},
               what="alpha still paused after restart")
    unknown = again.ctl("restart", "nope")
    assert unknown.returncode == 1
    assert "no org named 'nope'" in unknown.stderr
    assert again.stop()[0] == 0


def test_sd_notify_reports_ready_status_watchdog_reloading_and_stopping(
    write_config, start_daemon, notify_socket, workdir
):
    env = {"NOTIFY_SOCKET": str(workdir / "notify.sock"), "WATCHDOG_USEC": "400000"}
    daemon = start_daemon(write_config("alpha"), env=env, wait=False)
    seen: list[str] = []
    arrived: queue.Queue[list[str]] = queue.Queue()

    def drain() -> None:
        # Read all the time, as systemd does: a full datagram queue would stall the daemon.
        with contextlib.suppress(OSError):
            while True:
                arrived.put(notify_socket.recv(4096).decode().splitlines())

    threading.Thread(target=drain, daemon=True).start()

    def receive_until(prefix: str) -> str:
        while True:
            lines = arrived.get(timeout=30)
            seen.extend(lines)
            for line in lines:
                if line.startswith(prefix):
                    return line

    receive_until("READY=1")
    assert any(line.startswith("STATUS=1 org:") for line in seen)
    receive_until("WATCHDOG=1")
    assert daemon.ctl("reload").returncode == 0
    receive_until("RELOADING=1")
    assert any(line.startswith("MONOTONIC_USEC=") for line in seen)
    daemon.process.send_signal(signal.SIGTERM)
    receive_until("STOPPING=1")
    assert daemon.stop()[0] == 0


def test_sigterm_exits_zero_within_ten_seconds_and_no_secret_is_logged(
    write_config, start_daemon, workdir
):
    config = write_config("alpha", "beta")
    daemon = start_daemon(config)
    # beta's secret vanishes after the config was loaded: its restart fails (error paths log).
    (workdir / "secrets" / "beta.secret").unlink()
    daemon.ctl("restart", "beta")
    wait_until(lambda: daemon.org_states()["beta"] in ("backoff", "fatal"), what="beta failing")
    daemon.ctl("reload", "--wait")
    status, out, err = daemon.stop(timeout=10)
    assert status == 0
    assert '"event": "ilyd_stopped"' in out
    for secret in SECRETS.values():
        assert secret not in out
        assert secret not in err
