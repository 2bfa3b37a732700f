"""The gateway's processes: ``gateway_serve`` runs one gateway worker in this process until
SIGTERM or SIGINT and, with ``workers > 1``, supervises the other workers as child processes
(``manage.py run_gateway --share``), restarting any that dies.

Workers share the readings through an MQTT 5 shared subscription named after the client id;
worker ``n`` is client ``<client id>-<n>`` with its own persistent session, so a restarted
worker gets the readings it had not acknowledged (see ``gateway.py``). Keep the number of
workers across restarts: a session whose worker is gone holds its readings until it returns.
"""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from channels.layers import get_channel_layer
from django.conf import settings

from .gateway import GatewayLoop

STOP_TIMEOUT = 30.0  # seconds a worker has to finish its batch after SIGTERM before it is killed


class WorkerStartFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker of a group is started with."""

    group: str  # the shared-subscription group, and the client ids' prefix
    batch_size: int
    batch_timeout: float
    meters: tuple[str, ...] = ()

    def command(self, n: int) -> list[str]:
        """The command line of worker ``n`` (2 and up; worker 1 is the supervising process)."""
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_gateway",
                   "--client-id", f"{self.group}-{n}", "--share", self.group,
                   "--batch-size", str(self.batch_size), "--batch-timeout", str(self.batch_timeout)]
        for meter in self.meters:
            command += ["--meter", meter]
        return command


class WorkerSupervisor:
    """Child worker processes: started, watched, restarted when they die, stopped. Their log
    is passed on to ``out``, each line prefixed with ``[worker n]``."""

    def __init__(self, command: Callable[[int], list[str]], *, out: TextIO, err: TextIO,
                 ready_line: str = "subscribed") -> None:
        self.command = command
        self.out, self.err = out, err
        self.ready_line = ready_line
        self.children: dict[int, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # a restart and the final stop do not overlap

    def start(self, numbers: Iterable[int]) -> None:
        """Start these workers, each one ready (it said ``ready_line``) before the next; if
        one fails, the ones already started are stopped again."""
        try:
            for n in numbers:
                self.children[n] = self._spawn(n)
        except WorkerStartFailed:
            self.stop_all()
            raise

    def _spawn(self, n: int) -> subprocess.Popen:
        process = subprocess.Popen(self.command(n), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not self._relay_output(process, n, until=self.ready_line):
            process.kill()
            process.wait()
            raise WorkerStartFailed(f"gateway worker {n} did not start (its log is above)")
        threading.Thread(target=self._relay_output, args=(process, n), daemon=True).start()
        return process

    def _relay_output(self, process: subprocess.Popen, n: int, until: str | None = None) -> bool:
        """Pass a worker's log on, prefixed; with ``until``, stop after the line containing it
        and say whether one came before the log ended."""
        assert process.stdout is not None
        for line in process.stdout:
            self.out.write(f"[worker {n}] {line.rstrip()}\n")
            self.out.flush()
            if until is not None and until in line:
                return True
        return False

    def restart_dead(self) -> int:
        """One step: restart every worker that exited. Returns how many were restarted."""
        restarted = 0
        with self._lock:
            for n, process in list(self.children.items()):
                if process.poll() is None or self.stopping.is_set():
                    continue
                self.err.write(f"gateway worker {n} exited ({process.returncode}); restarting\n")
                self.err.flush()
                try:
                    self.children[n] = self._spawn(n)
                    restarted += 1
                except WorkerStartFailed as exc:  # tried again at the next step
                    self.err.write(f"{exc}\n")
                    self.err.flush()
        return restarted

    def watch(self, stopped: threading.Event, interval: float = 1.0) -> threading.Thread:
        """Restart dead workers every ``interval`` seconds until ``stopped`` is set, in a thread."""
        def run() -> None:
            while not stopped.wait(interval):
                self.restart_dead()

        thread = threading.Thread(target=run, daemon=True, name="gateway-supervisor")
        thread.start()
        return thread

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to every worker still running; killed if it has not exited after ``timeout``."""
        self.stopping.set()
        with self._lock:
            for process in self.children.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in self.children.values():
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def gateway_serve(*, url: str, client_id: str, batch_size: int, batch_timeout: float, meters: list[str] | None,
                  workers: int = 1, share: str | None = None, out: TextIO = sys.stdout,
                  err: TextIO = sys.stderr) -> None:
    """Run the gateway until SIGTERM or SIGINT; with ``workers > 1`` this process is worker 1
    and supervises the others (see module docstring). Raises ``WorkerStartFailed`` when a
    worker does not start, ``ValueError`` for fewer than one worker."""
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    supervisor = None
    if workers > 1:
        options = WorkerOptions(group=client_id, batch_size=batch_size, batch_timeout=batch_timeout,
                                meters=tuple(meters or ()))
        supervisor = WorkerSupervisor(options.command, out=out, err=err)
        supervisor.start(range(2, workers + 1))
        share, client_id = client_id, f"{client_id}-1"
    loop = GatewayLoop(url=url, client_id=client_id, batch_size=batch_size, batch_timeout=batch_timeout,
                       meters=meters, share=share)
    _prepare_worker_process()
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    signal.signal(signal.SIGINT, lambda *_: loop.stop())
    try:
        loop.start()
        suffix = f" with {workers} workers" if workers > 1 else ""
        out.write(f"gateway {client_id} subscribed at {url}{suffix}\n")
        out.flush()
        if supervisor is not None:
            supervisor.watch(loop.stopped)
        loop.run()
    finally:
        loop.close()
        if supervisor is not None:
            supervisor.stop_all()


def _prepare_worker_process() -> None:
    get_channel_layer()  # its modules load now (a tenth of a second), not in the first batch
    # A batch allocates tens of thousands of short-lived objects: the start-up heap is moved
    # out of the collector's sight and young collections run less often.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
