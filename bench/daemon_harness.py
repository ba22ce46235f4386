"""Shared helpers for benchmarks that run the whole daemon (`ilyd run`) against devorg.

Writing the config (one `[[org]]` block per devorg org, secrets in 0600 files),
provisioning every org, waiting until every org is subscribed, and reading a child
process's CPU time, RSS and thread count from /proc. Used by bench/realtime.py and
bench/daemon_idle.py (run as scripts, so `bench/` is on sys.path).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from ilyd.actors.context import OrgSecrets
from ilyd.config import load_config
from ilyd.control.client import ControlClient, DaemonNotRunningError
from ilyd.devorg import OrgInfo
from ilyd.errors import ControlError
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client


class OrgCredentials(Protocol):
    """What write_config needs of one devorg org (a devorg OrgInfo fits)."""

    name: str
    client_id: str
    client_secret: str
    username: str
    password: str


class DevOrgLike(Protocol):
    """A devorg's URL and orgs: an in-process DevOrg or one read from --credentials-out."""

    @property
    def url(self) -> str: ...

    @property
    def orgs(self) -> Sequence[OrgCredentials]: ...


class DevOrgProcess:
    """`ilyd devorg` in a child process, with DevOrg's `url`, `admin` and `orgs`.

    By default devorg runs apart from this process: the traffic threads here would
    otherwise share devorg's interpreter lock, and devorg's own delays (an event's
    delivery, a write's answer) would count as the daemon's latency. (Salesforce is on
    other machines; here devorg still shares the 2 cores with the daemon.)
    """

    def __init__(self, orgs: int, start_timeout: float = 120.0) -> None:
        self._orgs = orgs
        self._start_timeout = start_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="ilyd-bench-devorg-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = self.admin = ""
        self.orgs: list[OrgInfo] = []

    def __enter__(self) -> DevOrgProcess:
        creds = Path(self._dir.name) / "creds.json"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "devorg", "--listen", "127.0.0.1:0", "--orgs",
             str(self._orgs), "--credentials-out", str(creds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self._start_timeout
        while not (creds.exists() and creds.read_text().strip().endswith("}")):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("devorg did not start")
            time.sleep(0.1)
        info = json.loads(creds.read_text())
        self.url, self.admin = info["url"], info["admin"]
        self.orgs = [OrgInfo(**org) for org in info["orgs"]]
        return self

    @property
    def pid(self) -> int:
        """devorg's process id."""
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU time devorg has used."""
        return cpu_seconds(self.pid)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
        self._dir.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(root: Path, dev: DevOrgLike, metrics_port: int,
                 defaults: str = "poll_interval = 5\nworkers = 2\n",
                 processes: int | None = None, cpu_pinning: bool | None = None) -> Path:
    """An ilyd config under `root` for every org of `dev` (password auth); its path.

    `defaults` is the body of the [defaults] table ("" keeps the daemon's own);
    `processes` sets [daemon] processes (None: the daemon's "auto"), `cpu_pinning` [daemon]
    cpu_pinning (None: the daemon's default)."""
    text = (f'[daemon]\nstate_dir = "{root}/state"\ncontrol_socket = "{root}/control.sock"\n'
            'log_format = "json"\nlog_level = "info"\n'
            + (f"processes = {processes}\n" if processes is not None else "")
            + (f"cpu_pinning = {str(cpu_pinning).lower()}\n" if cpu_pinning is not None else "")
            + f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
            f'[defaults]\n{defaults}')
    for info in dev.orgs:
        secret, password = root / f"{info.name}.secret", root / f"{info.name}.pw"
        secret.write_text(info.client_secret)
        password.write_text(info.password)
        secret.chmod(0o600)
        password.chmod(0o600)
        text += (f'[[org]]\nname = "{info.name}"\nenvironment = "{dev.url}"\n'
                 f'auth = "password"\nclient_id = "{info.client_id}"\n'
                 f'username = "{info.username}"\nclient_secret_file = "{secret}"\n'
                 f'password_file = "{password}"\n')
    path = root / "ilyd.toml"
    path.write_text(text)
    return path


def provision(config_path: Path, threads: int = 8) -> None:
    """Install ilyd into every org of the config (fields, permission set, PushTopics)."""
    def one(org: object) -> None:
        rest = make_org_rest_client(org, OrgSecrets.read(org))  # type: ignore[arg-type]
        try:
            Provisioner(org.name, rest, objects=org.objects,  # type: ignore[attr-defined]
                        api_version=org.api_version).provision()  # type: ignore[attr-defined]
        finally:
            rest.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, load_config(config_path).orgs))


def wait_ready(daemon: subprocess.Popen[bytes], socket_path: Path, orgs: int,
               timeout: float) -> float:
    """Wait until every org is subscribed (or polling); seconds it took. Raises if the
    daemon exits or the deadline passes."""
    started = time.monotonic()
    while True:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} while starting")
        try:
            listed = ControlClient(socket_path, timeout=10).call("orgs")
        except (DaemonNotRunningError, OSError):
            listed = []
        except ControlError as exc:
            if exc.code != "busy":  # busy: still starting, or too busy starting to answer
                raise
            listed = []
        ready = sum(1 for org in listed
                    if org["detail"].get("connection") == "connected"
                    or org["detail"].get("polling"))
        if ready >= orgs:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"only {ready} of {orgs} org(s) subscribed after {timeout:g} s")
        time.sleep(0.5)


def log_problems(path: Path, limit: int = 5) -> list[str]:
    """The daemon log's error-level lines (and anything not JSON, e.g. a traceback)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except ValueError:
            level = "raw"
        if level in ("error", "critical", "raw"):
            found.append(line[:300])
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def family(pid: int) -> list[int]:
    """`pid` and its child processes (the daemon's worker processes, [daemon] processes)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return [pid, *sorted(children)]


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU seconds of a process and (unless told not to) its children."""
    total = 0.0
    for member in family(pid) if children else [pid]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _status(pid: int, key: str) -> int:
    """A /proc/PID/status figure, summed over the process and its children."""
    total = 0
    for member in family(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith(f"{key}:")),
                      0)
    return total


def rss_mib(pid: int) -> float:
    """VmRSS of a process and its children, in MiB."""
    return _status(pid, "VmRSS") / 1024


def thread_count(pid: int) -> int:
    """Threads of a process and its children."""
    return _status(pid, "Threads")


def fd_count(pid: int) -> int:
    """Open file descriptors of a process and its children."""
    return sum(len(os.listdir(f"/proc/{member}/fd")) for member in family(pid))
