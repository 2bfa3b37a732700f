import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iot_gateway.gateway import GatewayLoop


class Command(BaseCommand):
    help = ("Run the MQTT gateway: signed readings from gridcoin/v1/meters/+/readings into the ledger in batches, "
            "meters' online/offline states, relay commands out (retained).")

    def add_arguments(self, parser):
        parser.add_argument("--client-id", default="gridcoin-gateway",
                            help="MQTT client id; its persistent session holds unacknowledged readings")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--meter", action="append", dest="meters",
                            help="serve only this meter id (repeatable; default: every meter)")
        parser.add_argument("--batch-timeout", type=float, default=0.05, help="seconds to fill a batch")

    def handle(self, *args, client_id, batch_size, batch_timeout, meters, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        loop = GatewayLoop(url=settings.MQTT_URL, client_id=client_id, batch_size=batch_size,
                           batch_timeout=batch_timeout, meters=meters)
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        signal.signal(signal.SIGINT, lambda *_: loop.stop())
        loop.start()
        self.stdout.write(f"gateway {client_id} subscribed at {settings.MQTT_URL}", ending="\n")
        self.stdout.flush()
        try:
            loop.run()
        finally:
            loop.close()
