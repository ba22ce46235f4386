"""The daemon over worker processes ([daemon] processes = 2): one control socket, one
metrics endpoint and one systemd unit in front of two processes that share the orgs."""

from __future__ import annotations

import os
import signal
import subprocess

import requests

from ilyd.config import load_config
from ilyd.daemon.shards import FRONT_PID_ENV, send_config, shard_of

from .conftest import ILYD, wait_until

TWO = "processes = 2\n"
ORGS = ("alpha", "beta", "gamma", "delta")
# These orgs never reach Salesforce: they run, and are degraded once their stream backs
# off; either way their worker answers for them.
UP = ("running", "degraded")


def worker_pids(daemon) -> dict[int, int]:
    return {w["worker"]: w["pid"] for w in daemon.ctl_json("status")["workers"]}


def all_running(daemon):
    """`daemon` once every org of it runs (both workers answer)."""
    wait_until(lambda: set(daemon.org_states().values()) == {"running"}, what="all running")
    return daemon


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_orgs_are_shared_over_the_workers_and_status_shows_each(write_config, start_daemon,
                                                                 workdir):
    daemon = all_running(start_daemon(write_config(*ORGS, extra=TWO)))
    status = daemon.ctl_json("status")
    assert status["orgs"] == {"running": 4}
    workers = status["workers"]
    assert [w["worker"] for w in workers] == [0, 1]
    assert all(w["state"] == "running" and w["pid"] != daemon.process.pid for w in workers)
    assert sum(w["orgs"] for w in workers) == 4
    for org in daemon.ctl_json("orgs"):
        assert org["detail"]["worker"] == shard_of(org["name"], 2)
    # One state file per worker process; none shared.
    assert sorted(p.name for p in (workdir / "state").glob("ilyd*.db")) == [
        "ilyd.0-of-2.db", "ilyd.1-of-2.db"]
    human = daemon.ctl("status").stdout
    assert "worker 0: running" in human
    assert "worker 1: running" in human
    assert daemon.stop()[0] == 0


def test_org_verbs_reach_the_org_s_worker_and_unknown_orgs_are_refused(write_config,
                                                                        start_daemon):
    daemon = all_running(start_daemon(write_config(*ORGS, extra=TWO)))
    for org in ORGS:  # both workers answer, whichever owns the org
        assert daemon.ctl_json("pause", org)["state"] == "paused"
    assert set(daemon.org_states().values()) == {"paused"}
    assert daemon.ctl_json("resume", "gamma")["state"] in ("starting", "running")
    unknown = daemon.ctl("restart", "nope")
    assert unknown.returncode == 1
    assert "no org named 'nope'" in unknown.stderr
    assert daemon.stop()[0] == 0


def test_a_killed_worker_is_started_again_and_its_orgs_come_back(write_config, start_daemon):
    daemon = all_running(start_daemon(write_config(*ORGS, extra=TWO)))
    victim = worker_pids(daemon)[1]
    os.kill(victim, signal.SIGKILL)
    mine = [o for o in ORGS if shard_of(o, 2) == 1]
    assert mine, "the test needs an org on worker 1"

    def restarted() -> bool:
        workers = daemon.ctl_json("status")["workers"]
        return workers[1]["restarts"] == 1 and workers[1]["pid"] != victim

    wait_until(restarted, what="worker 1 started again")
    assert daemon.ctl_json("status")["workers"][1]["last_exit"] == -signal.SIGKILL
    wait_until(lambda: all(state in UP for state in daemon.org_states().values()),
               what="worker 1's orgs running again")
    metrics = requests.get(daemon.ctl_json("status")["metrics_url"], timeout=10).text
    assert 'ilyd_worker_restarts_total{worker="1"} 1.0' in metrics
    assert 'ilyd_worker_up{worker="1"} 1.0' in metrics
    assert daemon.stop()[0] == 0


def test_a_worker_that_does_not_answer_shows_its_orgs_starting_with_the_reason(write_config,
                                                                         start_daemon):
    daemon = all_running(start_daemon(write_config(*ORGS, extra=TWO)))
    victim = worker_pids(daemon)[0]
    # Stopped, not killed: the front sees a live process that no longer answers.
    os.kill(victim, signal.SIGSTOP)
    try:
        mine = [o for o in ORGS if shard_of(o, 2) == 0]
        wait_until(lambda: all(daemon.org_states()[o] == "starting" for o in mine),
                   what="worker 0's orgs shown as not answering")
        orgs = {o["name"]: o for o in daemon.ctl_json("orgs")}
        assert all("did not answer" in orgs[o]["last_error"] for o in mine)
        assert all(orgs[o]["state"] in UP for o in ORGS if o not in mine)
    finally:
        os.kill(victim, signal.SIGCONT)
    wait_until(lambda: all(state in UP for state in daemon.org_states().values()),
               what="answering again")
    assert daemon.stop()[0] == 0


def test_metrics_merge_every_worker_and_count_the_build_once(write_config, start_daemon):
    daemon = all_running(start_daemon(write_config(*ORGS, extra=TWO)))
    body = requests.get(daemon.ctl_json("status")["metrics_url"], timeout=10).text
    lines = body.splitlines()
    for org in ORGS:  # per-org series of both workers
        assert f'ilyd_org_up{{org="{org}"}} 1.0' in lines
    assert 'ilyd_orgs{state="running"} 4.0' in lines  # added up over the workers
    assert sum(1 for line in lines if line.startswith("ilyd_build_info{")) == 1
    assert sum(1 for line in lines if line.startswith("# TYPE ilyd_orgs ")) == 1
    threads = next(float(line.split()[1]) for line in lines if line.startswith("ilyd_threads "))
    with open(f"/proc/{daemon.process.pid}/status") as status:
        front = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    assert threads > front  # the workers' threads added to the front's own
    assert daemon.stop()[0] == 0


def test_sigterm_stops_the_workers_and_sighup_reaches_them(write_config, start_daemon):
    config = write_config(*ORGS, extra=TWO)
    daemon = all_running(start_daemon(config))
    pids = worker_pids(daemon).values()
    write_config("alpha", "beta", "gamma", extra=TWO)
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.org_states() == {"alpha": "running", "beta": "running",
                                               "gamma": "running"},
               what="the reload applied in both workers")
    assert daemon.ctl_json("status")["generation"] == 2
    write_config(*ORGS, extra=TWO)
    done = daemon.ctl("reload", "--wait")  # each worker's progress comes through the front
    assert done.returncode == 0, done.stderr
    assert "org=delta state=running" in done.stdout
    assert "config generation 3: applied" in done.stdout
    status, out, _err = daemon.stop(timeout=30)
    assert status == 0
    assert not [pid for pid in pids if alive(pid)]
    assert out.count('"event": "ilyd_worker_started"') == 2
    assert '"worker": 1' in out  # a worker's lines say which worker wrote them


def test_a_changed_process_count_moves_the_state_with_the_orgs(write_config, start_daemon,
                                                                workdir):
    config = write_config(*ORGS, extra=TWO)
    daemon = all_running(start_daemon(config))
    for org in ("alpha", "gamma"):
        assert daemon.ctl_json("pause", org)["state"] == "paused"
    assert daemon.stop()[0] == 0
    single = start_daemon(write_config(*ORGS, extra="processes = 1\n"))
    wait_until(lambda: single.org_states() == {"alpha": "paused", "beta": "running",
                                               "gamma": "paused", "delta": "running"},
               what="the paused orgs still paused in one process")
    assert "workers" not in single.ctl_json("status") or not single.ctl_json("status")["workers"]
    assert single.stop()[0] == 0
    assert [p.name for p in (workdir / "state").glob("ilyd*.db")] == ["ilyd.db"]


def test_a_bad_process_count_is_a_config_error_with_its_key(write_config, workdir):
    config = write_config("alpha", extra='processes = "many"\n')
    done = subprocess.run([*ILYD, "run", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "daemon.processes" in done.stderr
    assert '"auto" or a number of processes' in done.stderr


def test_the_workers_cache_answers_add_up_entries_included():
    from ilyd.daemon.front import merge_cache_answers

    def stats(provider: str, entries: int, hits: int) -> dict:
        row = {"provider": provider, "entries": entries, "positive": entries, "negative": 0,
               "expired": 0, "hits": hits, "misses": 1}
        return {"action": "stats", "entries": entries, "hits": hits, "misses": 1,
                "providers": [row]}

    merged = merge_cache_answers([stats("dataset", 3, 10), stats("dataset", 2, 5)])
    assert (merged["entries"], merged["hits"], merged["misses"]) == (5, 15, 2)
    assert merged["providers"] == [{"provider": "dataset", "entries": 5, "positive": 5,
                                    "negative": 0, "expired": 0, "hits": 15, "misses": 2}]
    cleared = merge_cache_answers([{"action": "clear", "domain": None, "removed": 4},
                                   {"action": "clear", "domain": None, "removed": 1}])
    assert cleared == {"action": "clear", "domain": None, "removed": 5}


def test_the_front_asks_its_workers_each_second_on_the_same_threads(write_config):
    import threading

    from ilyd.config import load_config
    from ilyd.daemon.front import Front

    # Workers not started: each ask is refused at once ("restarting"), as a crashed one's.
    front = Front(load_config(write_config(*ORGS, extra=TWO)), 2)
    try:
        def asking_threads() -> set[int | None]:
            assert front.summary_now() == "4 orgs: 4 backoff"
            return {t.ident for t in threading.enumerate() if t.name.startswith("front-")}

        seen = set().union(*(asking_threads() for _ in range(5)))
        assert 0 < len(seen) <= len(front.workers)
    finally:
        front._stop_workers()


def test_a_worker_whose_front_is_already_gone_stops_by_itself(write_config, workdir):
    # The front died before the worker first looked at its parent: the worker knows its
    # front from its environment, not from whoever its parent is by then.
    config = write_config(*ORGS, extra=TWO)
    gone = subprocess.Popen(["true"])
    gone.wait()
    env = {**os.environ, FRONT_PID_ENV: str(gone.pid)}
    worker = subprocess.Popen([*ILYD, "run", "--config", str(config), "--worker", "0/2"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env)
    try:
        out, _ = worker.communicate(send_config(load_config(config)), timeout=60)
    finally:
        if worker.poll() is None:  # it ran on: do not leave it behind the test
            worker.kill()
            worker.wait(timeout=30)
    assert worker.returncode == 0
    assert b'"event": "front_process_gone"' in out
