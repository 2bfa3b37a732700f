import gc
import signal
import subprocess
import sys
import threading
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iot_gateway.gateway import GatewayLoop

MANAGE = Path(settings.BASE_DIR) / "manage.py"


class Command(BaseCommand):
    help = ("Run the MQTT gateway: signed readings from gridcoin/v1/meters/+/readings into the ledger in batches, "
            "meters' online/offline states, relay commands out (retained).")

    def add_arguments(self, parser):
        parser.add_argument("--client-id", default="gridcoin-gateway",
                            help="MQTT client id; its persistent session holds unacknowledged readings")
        parser.add_argument("--batch-size", type=int, default=1000, help="readings per database transaction at most")
        parser.add_argument("--meter", action="append", dest="meters",
                            help="serve only this meter id (repeatable; default: every meter)")
        parser.add_argument("--batch-timeout", type=float, default=0.05, help="seconds to fill a batch")
        parser.add_argument("--workers", type=int, default=1,
                            help="worker processes sharing the subscription (client ids <client-id>-1..N); "
                                 "keep the same number across restarts, each worker's session holds its readings")
        parser.add_argument("--share", default=None, help=("join this shared-subscription group (set by --workers)"))

    def handle(self, *args, client_id, batch_size, batch_timeout, meters, workers, share, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        children: dict[int, subprocess.Popen] = {}
        if workers > 1:  # this process is worker 1 and supervises the others
            share = client_id
            children = {n: self._spawn(n, client_id, batch_size, batch_timeout, meters) for n in range(2, workers + 1)}
            client_id = f"{client_id}-1"
        loop = GatewayLoop(url=settings.MQTT_URL, client_id=client_id, batch_size=batch_size,
                           batch_timeout=batch_timeout, meters=meters, share=share)
        get_channel_layer()  # its modules load now (a tenth of a second), not in the first batch
        # A batch allocates tens of thousands of short-lived objects: the start-up heap is
        # moved out of the collector's sight and young collections run less often (about 5%
        # of a reading's CPU with the defaults).
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        signal.signal(signal.SIGINT, lambda *_: loop.stop())
        try:
            loop.start()
            suffix = f" with {workers} workers" if workers > 1 else ""
            self.stdout.write(f"gateway {client_id} subscribed at {settings.MQTT_URL}{suffix}", ending="\n")
            self.stdout.flush()
            if children:
                threading.Thread(target=self._watch, args=(loop, children, share, batch_size, batch_timeout, meters),
                                 daemon=True).start()
            loop.run()
        finally:
            loop.close()
            for process in children.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in children.values():
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _spawn(self, n: int, group: str, batch_size: int, batch_timeout: float,
               meters: list[str] | None) -> subprocess.Popen:
        command = [sys.executable, str(MANAGE), "run_gateway", "--client-id", f"{group}-{n}", "--share", group,
                   "--batch-size", str(batch_size), "--batch-timeout", str(batch_timeout)]
        for meter in meters or []:
            command += ["--meter", meter]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not self._relay_output(process, n, until="subscribed"):
            process.kill()
            raise CommandError(f"gateway worker {n} did not start (its log is above)")
        threading.Thread(target=self._relay_output, args=(process, n), daemon=True).start()
        return process

    def _watch(self, loop: GatewayLoop, children: dict[int, subprocess.Popen], group: str, batch_size: int,
               batch_timeout: float, meters: list[str] | None) -> None:
        """Restart a worker that died (its persistent session still holds its readings)."""
        while not loop.stopped.wait(1.0):
            for n, process in list(children.items()):
                if process.poll() is not None and not loop.stopped.is_set():
                    self.stderr.write(f"gateway worker {n} exited ({process.returncode}); restarting")
                    try:
                        children[n] = self._spawn(n, group, batch_size, batch_timeout, meters)
                    except CommandError as exc:
                        self.stderr.write(str(exc))

    def _relay_output(self, process: subprocess.Popen, n: int, until: str | None = None) -> bool:
        """Pass a worker's log on, prefixed; with ``until``, stop after the line containing it
        and say whether one came before the log ended."""
        for line in process.stdout:
            self.stdout.write(f"[worker {n}] {line.rstrip()}", ending="\n")
            self.stdout.flush()
            if until is not None and until in line:
                return True
        return False
