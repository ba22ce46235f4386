"""`[daemon] lookup_threads`: the process's lookup pool size, checked with its key path,
shown by `ilyd config show`, and applied only by a restart."""

from __future__ import annotations

import tomllib
from dataclasses import replace

from ilyd.cli import main
from ilyd.config import load_config
from ilyd.config.diff import diff_configs

from .conftest import GOOD_ORG


def test_lookup_threads_defaults_to_32_and_takes_a_count(write_config, secret_file):
    assert load_config(write_config(GOOD_ORG)).daemon.lookup_threads == 32
    path = write_config("[daemon]\nlookup_threads = 8\n" + GOOD_ORG)
    assert load_config(path).daemon.lookup_threads == 8


def test_config_check_names_a_bad_lookup_thread_count_with_its_key(write_config, capsys):
    path = write_config("[daemon]\nlookup_threads = 0\n")
    assert main(["config", "check", "--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "daemon.lookup_threads: must be at least 1 (got 0)"]
    path = write_config('[daemon]\nlookup_threads = "lots"\n')
    assert main(["config", "check", "--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "daemon.lookup_threads: must be an integer (got a string)"]


def test_config_show_prints_the_lookup_threads_in_force(write_config, secret_file, capsys):
    path = write_config(GOOD_ORG)
    assert main(["config", "show", "--config", str(path)]) == 0
    assert tomllib.loads(capsys.readouterr().out)["daemon"]["lookup_threads"] == 32


def test_a_reload_that_changes_lookup_threads_says_it_takes_a_restart(write_config,
                                                                      secret_file):
    old = load_config(write_config(GOOD_ORG))
    new = replace(old, daemon=replace(old.daemon, lookup_threads=64))
    diff = diff_configs(old, new)
    assert diff.restart_required == ("daemon.lookup_threads",)
    assert diff.changed == ()
