"""Which worker process runs which org, how many there are, and the config they get."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from ilyd.config import load_config
from ilyd.config.processes import process_count
from ilyd.daemon.shards import (
    WorkerRole,
    own_orgs,
    receive_config,
    send_config,
    shard_of,
    worker_socket,
)


def config_with(tmp_path: Path, orgs: int, processes: str = '"auto"'):
    secret = tmp_path / "secret"
    secret.write_text("s")
    secret.chmod(0o600)
    text = f'[daemon]\nstate_dir = "{tmp_path}/state"\nprocesses = {processes}\n'
    for n in range(orgs):
        text += (f'[[org]]\nname = "org{n}"\nauth = "client_credentials"\n'
                 f'environment = "https://org{n}.my.salesforce.com"\n'
                 f'client_id = "id{n}"\nclient_secret_file = "{secret}"\n')
    text += '[[org]]\nname = "broken"\nauth = "nope"\n'  # a config_error org counts too
    path = tmp_path / "ilyd.toml"
    path.write_text(text)
    return load_config(path)


def test_shard_of_is_stable_and_spreads_the_orgs():
    assert [shard_of(f"org{n}", 4) for n in range(8)] == [
        shard_of(f"org{n}", 4) for n in range(8)]
    assert shard_of("acme", 1) == 0
    # crc32, not Python's salted hash: the same in every process and every run. Pinned:
    # the state files are laid out by it, and only a changed count moves rows.
    assert shard_of("acme", 7) == 6
    counts = [0, 0, 0, 0]
    for n in range(1000):
        counts[shard_of(f"org{n}", 4)] += 1
    assert min(counts) > 200


def test_own_orgs_partitions_orgs_and_their_config_errors(tmp_path):
    config = config_with(tmp_path, 30)
    parts = [own_orgs(config, WorkerRole(i, 3)) for i in range(3)]
    names = [n for part in parts for n in part.org_names()]
    assert sorted(names) == sorted(config.org_names())
    owner = parts[shard_of("broken", 3)]
    assert [e.name for e in owner.org_errors] == ["broken"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) != 2, reason="figures for a 2-CPU machine")
def test_auto_counts_the_orgs_of_the_config_against_the_cpus_and_a_set_count_wins(tmp_path):
    assert process_count(config_with(tmp_path, 0)) == 1  # the broken org alone
    assert process_count(config_with(tmp_path, 10)) == 1  # too few orgs for two cores
    assert process_count(config_with(tmp_path, 50)) == 1  # one CPU left to the rest
    assert process_count(config_with(tmp_path, 1000)) == 1  # however many orgs
    assert process_count(config_with(tmp_path, 100, processes="1")) == 1
    assert process_count(config_with(tmp_path, 3, processes="8")) == 8


def test_worker_role_parses_its_option_and_refuses_nonsense():
    assert WorkerRole.parse("1/3") == WorkerRole(1, 3)
    assert str(WorkerRole(1, 3)) == "1/3"
    for bad in ("3/3", "x/2", "1", "-1/2"):
        with pytest.raises(ValueError, match=r"invalid literal|below the count"):
            WorkerRole.parse(bad)


def test_a_worker_receives_the_front_s_config_exactly(tmp_path):
    config = config_with(tmp_path, 3)
    assert receive_config(io.BytesIO(send_config(config))) == config
    with pytest.raises(TypeError):
        receive_config(io.BytesIO(__import__("pickle").dumps({"not": "a config"})))


def test_worker_sockets_sit_beside_the_control_socket():
    assert worker_socket(Path("/run/ilyd/control.sock"), 2) == Path(
        "/run/ilyd/control.sock.worker-2")


def test_importing_shards_leaves_every_other_pickle_as_python_has_it():
    # Only the front's config pickler knows read-only mappings; elsewhere pickling one
    # still fails, as it does without ilyd.
    import pickle
    from types import MappingProxyType

    assert "ilyd.daemon.shards" in sys.modules
    with pytest.raises(TypeError, match="mappingproxy"):
        pickle.dumps(MappingProxyType({"a": 1}))
