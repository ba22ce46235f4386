"""What `[daemon] processes = "auto"` means: worker processes for cores, not threads."""

from __future__ import annotations

from ilyd.config.processes import ORGS_PER_PROCESS, auto_processes


def test_auto_runs_fewer_orgs_than_a_process_takes_in_one_process_on_any_machine():
    assert auto_processes(0, 2) == 1
    assert auto_processes(1, 8) == 1
    assert auto_processes(ORGS_PER_PROCESS, 8) == 1


def test_auto_adds_a_process_for_each_share_of_orgs_up_to_one_per_cpu_beyond_the_first():
    assert auto_processes(ORGS_PER_PROCESS + 1, 8) == 2
    assert auto_processes(3 * ORGS_PER_PROCESS, 8) == 3
    assert auto_processes(100, 3) == 2


def test_auto_runs_one_process_on_two_cpus_however_many_orgs():
    assert auto_processes(100, 2) == 1
    assert auto_processes(1000, 2) == 1
    assert auto_processes(1000, 1) == 1
    assert auto_processes(100_000, 16) == 15
