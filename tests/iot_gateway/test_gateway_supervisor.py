"""``iot_gateway.supervisor``: the gateway's worker processes are started ready one by one,
restarted when they die, stopped with SIGTERM (killed if they do not go), and a worker that
does not start stops the others. Stand-in workers here; the real ones run in
test_gateway_workers.py (``run_gateway --workers 2``) and test_gateway_crash.py."""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

import pytest
from django.conf import settings

from iot_gateway.supervisor import WorkerOptions, WorkerStartFailed, WorkerSupervisor

# ``extra`` runs before the worker says it is ready, as a real worker sets its signal handlers
# before subscribing: otherwise a SIGTERM could arrive before the handler under test is set.
READY = "import signal, sys, time; {extra}; print('worker {n} subscribed', flush=True); time.sleep(60)"


def stand_in(extra: str = "pass", *, fail: set[int] | None = None):
    def command(n: int) -> list[str]:
        if fail and n in fail:
            return [sys.executable, "-c", f"print('worker {n} cannot reach the broker')"]
        return [sys.executable, "-c", READY.format(n=n, extra=extra)]

    return command


@pytest.fixture
def logs():
    return io.StringIO(), io.StringIO()


def test_workers_start_ready_and_their_log_is_passed_on_prefixed(logs):
    out, err = logs
    supervisor = WorkerSupervisor(stand_in(), out=out, err=err)
    try:
        supervisor.start([2, 3])
        assert sorted(supervisor.children) == [2, 3]
        assert all(process.poll() is None for process in supervisor.children.values())
        assert "[worker 2] worker 2 subscribed" in out.getvalue()
        assert "[worker 3] worker 3 subscribed" in out.getvalue()
        assert supervisor.restart_dead() == 0  # nothing died
    finally:
        supervisor.stop_all()
    assert all(process.returncode == -signal.SIGTERM for process in supervisor.children.values())


def test_a_dead_worker_is_restarted_by_one_step(logs):
    out, err = logs
    supervisor = WorkerSupervisor(stand_in(), out=out, err=err)
    try:
        supervisor.start([2])
        first = supervisor.children[2]
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert supervisor.restart_dead() == 1
        assert supervisor.children[2].pid != first.pid and supervisor.children[2].poll() is None
        assert f"gateway worker 2 exited ({-signal.SIGKILL}); restarting" in err.getvalue()
    finally:
        supervisor.stop_all()


def test_a_worker_that_does_not_start_stops_the_others(logs):
    out, err = logs
    supervisor = WorkerSupervisor(stand_in(fail={3}), out=out, err=err)
    with pytest.raises(WorkerStartFailed, match="gateway worker 3 did not start"):
        supervisor.start([2, 3])
    assert supervisor.children[2].poll() == -signal.SIGTERM
    assert "[worker 3] worker 3 cannot reach the broker" in out.getvalue()


def test_a_worker_that_ignores_sigterm_is_killed_after_the_timeout(logs):
    out, err = logs
    supervisor = WorkerSupervisor(stand_in("signal.signal(signal.SIGTERM, signal.SIG_IGN)"), out=out, err=err)
    supervisor.start([2])
    supervisor.stop_all(timeout=0.5)
    assert supervisor.children[2].returncode == -signal.SIGKILL
    assert supervisor.restart_dead() == 0  # stopping: not restarted


def test_a_workers_command_line_joins_the_group_with_its_own_client_id():
    options = WorkerOptions(group="gw", batch_size=10, batch_timeout=0.02, meters=("SL-1", "SL-2"))
    command = options.command(2)
    assert command[:3] == [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_gateway"]
    assert command[3:] == ["--client-id", "gw-2", "--share", "gw", "--batch-size", "10", "--batch-timeout", "0.02",
                           "--meter", "SL-1", "--meter", "SL-2"]
