from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iot_gateway.supervisor import WorkerStartFailed, gateway_serve


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
        parser.add_argument("--share", default=None, help="join this shared-subscription group (set by --workers)")

    def handle(self, *args, client_id, batch_size, batch_timeout, meters, workers, share, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        try:
            gateway_serve(url=settings.MQTT_URL, client_id=client_id, batch_size=batch_size,
                          batch_timeout=batch_timeout, meters=meters, workers=workers, share=share,
                          out=self.stdout, err=self.stderr)
        except WorkerStartFailed as exc:
            raise CommandError(str(exc)) from exc
