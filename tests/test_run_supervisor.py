"""`make run` (`python -m services.run`) as a process manager: a child that dies is started again,
with a bounded, growing delay, and logged; the rest keep running; Ctrl-C still stops everything.
In the embedded default the relays and the mailer are threads of one child (`services.embedded_workers`),
which does the same for a loop that fails inside it."""
from __future__ import annotations

import os
import re
import shutil
import signal

import pytest

from services.embedded_workers import shares_one_process
from services.run import FIRST_RESTART_DELAY, MAX_RESTART_DELAY, STABLE_AFTER, processes, restart_delay
from tests.processes import wait_for
from tests.test_cross_process import (  # noqa: F401
    _cmdline,
    check_verification_mail,
    descendants,
    sign_up,
    stacks,
    stop_cleanly,
    unique_address,
    wait_for_eml,
)


def test_the_restart_delay_doubles_to_a_bound_and_resets_after_a_stable_run():
    delays, delay = [], None
    for _ in range(8):
        delay = restart_delay(delay, uptime=0.5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert (FIRST_RESTART_DELAY, MAX_RESTART_DELAY) == (1, 30)
    assert restart_delay(30, uptime=STABLE_AFTER) == FIRST_RESTART_DELAY
    assert restart_delay(30, uptime=STABLE_AFTER - 1) == MAX_RESTART_DELAY


def test_the_loops_share_a_process_only_with_sqlite_files_and_the_filesystem_bus():
    sqlite = ["sqlite:///var/identity.db", "sqlite:///var/tenancy.db", "sqlite:///var/notifier.db"]
    assert shares_one_process(sqlite, "filesystem://")
    assert not shares_one_process(sqlite, "amqp://guest:guest@127.0.0.1:5672//")
    assert not shares_one_process([*sqlite[:2], "postgresql+psycopg://db/notifier"], "filesystem://")
    assert set(processes(shared=True)) == {"identity", "tenancy", "notifier", "web", "workers"}
    assert set(processes(shared=False)) == {"identity", "tenancy", "notifier", "web", "mailer", "identity-relay",
                                            "tenancy-relay"}


def consumers(stack) -> list[int]:
    """The process that runs the mailer: in the embedded default, the one that runs every background loop."""
    return [pid for pid, _ in descendants(stack.process.pid) if "services.embedded_workers" in _cmdline(pid)]


@pytest.mark.slow
def test_a_killed_child_is_restarted_and_logged_while_the_rest_keep_running_then_ctrl_c_stops_all(stacks):
    stack = stacks()
    stack.wait_ready()
    [consumer] = consumers(stack)

    os.kill(consumer, signal.SIGKILL)
    wait_for(lambda: "threshold: restarting workers" in stack.log() or stack.process.poll() is not None, timeout=15,
             what="the supervisor to restart the consumer")
    assert stack.process.poll() is None, f"services.run exited:\n{stack.log()}"
    assert "threshold: workers exited with -9; restarting in 1s" in stack.log(), stack.log()
    [restarted] = wait_for(lambda: [pid for pid in consumers(stack) if pid != consumer] or None, timeout=15,
                           what="a new consumer process")
    assert "stopping everything" not in stack.log()
    stack.wait_ready(timeout=15)  # the HTTP services never went away

    # The new consumer mails what is signed up now.
    address = unique_address()
    sign_up(stack, address)
    _, message = wait_for_eml(stack.var_dir / "mail", address)
    check_verification_mail(message, address, stack.identity_url)
    assert consumers(stack) == [restarted]

    stack.snapshot()
    stop_cleanly(stack)
    whole_log = stack.log(last=100_000)
    assert len(re.findall(r"exited with .*; restarting in", whole_log)) == 1, whole_log  # nothing else died


@pytest.mark.slow
def test_the_embedded_default_runs_relays_and_mailer_in_one_process_which_restarts_a_failed_loop(stacks):
    stack = stacks()
    stack.wait_ready()
    commands = [_cmdline(pid) for pid, _ in descendants(stack.process.pid)]
    assert not [command for command in commands if " relay" in command or "services.notifier consume" in command], \
        commands  # no process of their own
    [workers] = consumers(stack)

    # The bus folder disappears under the running loops: the mailer's next poll fails, its thread ends, and
    # it is started again (which lays the folder out anew) inside the same process.
    shutil.rmtree(stack.var_dir / "bus")
    wait_for(lambda: "restarting mailer" in stack.log(last=100_000), timeout=30,
             what="the mailer loop to be restarted in its process")
    assert re.search(r"mailer stopped \(FileNotFoundError.*\); restarting in 1s", stack.log(last=100_000)), \
        stack.log()

    address = unique_address()
    sign_up(stack, address)
    _, message = wait_for_eml(stack.var_dir / "mail", address)
    check_verification_mail(message, address, stack.identity_url)
    assert consumers(stack) == [workers]  # the same process all along
    assert "exited with" not in stack.log(last=100_000)

    stack.snapshot()
    stop_cleanly(stack)
