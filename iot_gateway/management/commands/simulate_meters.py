import itertools
import random
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from iot_gateway.fleet import FleetError, fleet_devices, simulated_meters
from iot_gateway.meter_clients import MqttMeter, post_reading
from iot_gateway.services import readings_ingest
from meters import live


class Command(BaseCommand):
    help = ("Run a fleet of simulated meters (own keys, signed cumulative readings) over MQTT, HTTP or in-process; "
            "meters obey relay commands: a meter whose relay is off stops consuming.")

    def add_arguments(self, parser):
        parser.add_argument("--households", type=int, default=2)
        parser.add_argument("--street-lights", type=int, default=2)
        parser.add_argument("--producers", type=int, default=1)
        parser.add_argument("--rate", type=float, default=0.2, help="readings per second per meter")
        parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: run until stopped)")
        parser.add_argument("--prefix", default="SIM", help="public ids are <prefix>-HM-0001, <prefix>-SL-0001, ...")
        way = parser.add_mutually_exclusive_group()
        way.add_argument("--http", action="store_true", help="POST readings to the HTTP path instead of MQTT")
        way.add_argument("--in-process", action="store_true", help="call the ingestion service directly (no broker)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="for --http")

    def handle(self, *args, households, street_lights, producers, rate, seconds, prefix, http, in_process, base_url,
               **options):
        if rate <= 0:
            raise CommandError("--rate must be positive")
        if not (http or in_process or settings.MQTT_URL):
            raise CommandError("MQTT_URL is not set: set it, or use --http / --in-process")
        try:
            devices = fleet_devices(households=households, street_lights=street_lights, producers=producers,
                                    prefix=prefix)
        except FleetError as exc:
            raise CommandError(str(exc)) from exc
        meters = simulated_meters(devices)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        clients = [] if (http or in_process) else [MqttMeter(m, url=settings.MQTT_URL).start() for m in meters]
        now = timezone.now()
        for meter in meters:
            meter.advance(now)
        interval = 1.0 / rate
        due = {m.public_id: time.monotonic() + random.uniform(0, interval) for m in meters}
        by_id = {c.meter.public_id: c for c in clients}
        meter_by_id = {m.public_id: m for m in meters}

        def obey(public_id: str, relay: str) -> None:
            if public_id in meter_by_id:
                meter_by_id[public_id].relay_command(relay)

        if in_process:  # the fleet is in this process: relay commands reach it directly
            live.relay_publisher_register(obey)
        self.stdout.write(f"{len(meters)} simulated meters, {rate:g} readings/s each, via "
                          f"{'HTTP ' + base_url if http else 'in-process' if in_process else settings.MQTT_URL}")
        end = time.monotonic() + seconds if seconds else None
        sent = itertools.count()
        try:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                tick = time.monotonic()
                ready = [m for m in meters if due[m.public_id] <= tick]
                if in_process and ready:
                    readings_ingest([m.next_reading(timezone.now()) for m in ready], received_via="http")
                for meter in ready:
                    if http:
                        post_reading(base_url, meter, timezone.now())
                    elif not in_process:
                        by_id[meter.public_id].publish_reading(timezone.now())
                    due[meter.public_id] += interval
                    next(sent)
                stop.wait(max(0.0, min(due.values()) - time.monotonic()))
        finally:
            live.relay_publisher_unregister(obey)
            for client in clients:
                client.stop()
        self.stdout.write(f"sent {next(sent)} readings")
