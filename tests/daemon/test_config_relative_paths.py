"""The default state directory and control socket (outside systemd) are next to the
config file, as its header says relative paths are: not in the working directory."""

from __future__ import annotations

import os
import subprocess

from tests.daemon.conftest import ILYD, org_toml
from tests.helpers.waiting import wait_until


def test_ctl_with_config_finds_the_daemon_from_another_directory(workdir):
    config = workdir / "etc" / "ilyd.toml"
    config.parent.mkdir()
    config.write_text('[metrics]\nlisten = ""\n' + org_toml("alpha", workdir / "secrets"))
    elsewhere, another = workdir / "elsewhere", workdir / "another"
    elsewhere.mkdir()
    another.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY")}
    daemon = subprocess.Popen([*ILYD, "run", "--config", str(config)], cwd=elsewhere, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def status() -> subprocess.CompletedProcess[str]:
            return subprocess.run([*ILYD, "ctl", "--config", str(config), "status"],
                                  cwd=another, env=env, capture_output=True, text=True,
                                  timeout=60, check=False)

        done = wait_until(lambda: daemon.poll() is not None or status().returncode == 0,
                          what="ilyd ctl --config to reach the daemon")
        assert daemon.poll() is None, daemon.communicate(timeout=30)[1]
        assert done is True
        assert (workdir / "etc" / "var" / "run" / "control.sock").is_socket()
        assert (workdir / "etc" / "var" / "state").is_dir()
        assert not (elsewhere / "var").exists()
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    assert daemon.returncode == 0
