"""Gateway benchmark (issue 4), on PostgreSQL and Mosquitto:

1. signed readings ingested into the ledger per second, end to end: 10,000 meters' pre-signed
   readings (3 each, round robin) published over MQTT (QoS 1, by ``bench.mqtt_fleet``, a light
   load generator) to ``run_gateway --workers N`` running as its own processes (batch loop,
   acks after commit), until every reading is committed; with the CPU each part used per
   reading (gateway, PostgreSQL, broker, the fleet itself), which bounds what two cores can
   reach. The fleet is funded first and the tables analysed (autovacuum would have done it on
   a live system). Each meter gets its relay command once, at its first reading after the
   gateway connected; its later readings change nothing and publish nothing (a change is
   published, and timed in 3);
2. the same readings through ``readings_ingest`` in-process: one transaction per batch versus
   one per reading, and the share of the after-commit announcements;
3. fund → relay command p95: a device at zero is funded, its retained relay message timed
   until it reaches a subscriber;
4. the gateway's peak resident memory, all its processes together (sampled from /proc).

Targets: ≥ 5,000 readings/s, relay p95 ≤ 200 ms, gateway ≤ 300 MB.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import ROOT, Timer, fresh_database, p95, setup_django
from ledger.keys import ENERGY, device_account

METERS = int(os.environ.get("BENCH_METERS", "10000"))
READINGS_PER_METER = int(os.environ.get("BENCH_READINGS_PER_METER", "3"))
IN_PROCESS_READINGS = int(os.environ.get("BENCH_IN_PROCESS_READINGS", "5000"))
RELAY_SAMPLES = int(os.environ.get("BENCH_RELAY_SAMPLES", "100"))
GATEWAY_WORKERS = int(os.environ.get("BENCH_GATEWAY_WORKERS", "2"))
PUBLISH_WINDOW = 8_000  # readings per gateway worker the fleet may publish ahead of the commits
T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


@functools.cache
def gateway_redis_url() -> str:
    """The Redis the gateway announces through, as deployed (its own process: only a shared
    channel layer reaches browsers): BENCH_REDIS_URL, else the local one if it answers."""
    url = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/5"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        return ""
    return url


def build_fleet(count: int, prefix: str):
    """Register ``count`` street lights in bulk (setup only): their identities and accounts as
    configuration transactions written in batches (so the bench's ledger verifies), their device
    rows in one insert."""
    from django.db import transaction

    from ledger import services as ledger
    from ledger.crypto import generate_private_key, public_bytes
    from ledger.models import AccountKind, Identity, IdentityKind, Organisation
    from meters.models import Device
    from tests.ledger_helpers import make_member

    utility = (make_member("bench-utility", "utility") if not Organisation.objects.filter(msp_id="bench-utility")
               .exists() else None)
    if utility is not None:
        ledger.asset_create(code=ENERGY, name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    org = Organisation.objects.get(msp_id="bench-utility")
    keys = {f"{prefix}-{n:05d}": generate_private_key() for n in range(count)}
    with transaction.atomic():
        ledger.config_changes(
            [("registerIdentity", {"identity": f"{org.msp_id}/{pid}", "kind": str(IdentityKind.DEVICE),
                                   "public_key": public_bytes(k).hex()}) for pid, k in keys.items()]
            + [("openAccount", {"key": device_account(pid), "asset": ENERGY, "kind": str(AccountKind.DEVICE),
                                "organisation": org.msp_id}) for pid in keys])
        by_name = {i.name: i for i in Identity.objects.filter(organisation=org, name__in=list(keys))}
        identities = [by_name[pid] for pid in keys]
        Device.objects.bulk_create(Device(public_id=pid, name=pid, kind="street_light", organisation=org, identity=i)
                                   for pid, i in zip(keys, identities, strict=True))
    return utility, org, keys


def fund_all(utility, public_ids: list[str], amount: int) -> None:
    """Setup: mint ``amount`` to every device, 500 signed mints per ledger batch."""
    from ledger.batch import Request, invoke_batch

    for n in range(0, len(public_ids), 500):
        requests = [Request(chaincode="token", function="mint", args={"to": device_account(pid), "asset": ENERGY,
                                                                       "amount": amount},
                            invoker=utility.identity, idempotency_key=f"bench-fund:{pid}", signer=utility.key)
                    for pid in public_ids[n:n + 500]]
        for result in invoke_batch(requests):
            assert getattr(result, "ok", False), result


def clear_retained(mqtt_url: str, public_ids: list[str]) -> None:
    """Remove the bench devices' retained relay commands from the broker (an empty retained
    message clears a topic), so runs do not pile them up for every later subscriber."""
    from iot_gateway.relay import MqttRelayPublisher

    publisher = MqttRelayPublisher(mqtt_url)
    for public_id in public_ids:
        publisher(public_id, "")
    publisher.close(timeout=60)  # once the broker has them all


def sign_readings(org, keys: dict, per_meter: int, start_counter: int = 1) -> list[dict]:
    """Round-robin over the meters, as a live fleet would publish."""
    from iot_gateway.simulator import SimulatedMeter

    meters = [SimulatedMeter(public_id=pid, kind="street_light", invoker=f"{org.msp_id}/{pid}", signer=k)
              for pid, k in keys.items()]
    out = []
    for r in range(per_meter):
        counter = start_counter + r
        at = T0 + timedelta(minutes=counter)
        out += [m.reading(counter=counter, import_wh=10 * counter, export_wh=0, timestamp=at) for m in meters]
    return out


def gateway_process(mqtt_url: str, client_id: str, workers: int = 1) -> subprocess.Popen:
    from django.conf import settings
    from django.db import connection

    s = connection.settings_dict
    db_url = f"postgres://{s['USER']}{':' + s['PASSWORD'] if s['PASSWORD'] else ''}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    env = {**os.environ, "DATABASE_URL": db_url, "MQTT_URL": mqtt_url, "GRIDCOIN_DATA_DIR": str(settings.DATA_DIR),
           "GRIDCOIN_KEK": settings.GRIDCOIN_KEK, "GRIDCOIN_ORDERER_KEY": settings.GRIDCOIN_ORDERER_KEY,
           "GRIDCOIN_MQTT_RELAY": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    if gateway_redis_url():
        env["REDIS_URL"] = gateway_redis_url()
    process = subprocess.Popen([sys.executable, "manage.py", "run_gateway", "--client-id", client_id,
                                "--batch-size", os.environ.get("BENCH_BATCH_SIZE", "1000"), "--batch-timeout", "0.05", "--workers", str(workers)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    for line in process.stdout:  # the supervising worker says it is subscribed once every worker is
        log.append(line)
        if "subscribed" in line and not line.startswith("[worker"):
            break
    else:
        sys.exit(f"run_gateway did not start:\n{''.join(log)}")
    threading.Thread(target=_drain, args=(process, os.environ.get("BENCH_GATEWAY_LOG") == "1"), daemon=True).start()
    return process


def _drain(process: subprocess.Popen, show: bool) -> None:
    """Read the gateway's log to the end (BENCH_GATEWAY_LOG=1 prints it)."""
    for line in process.stdout:
        if show:
            print(line, end="", flush=True)


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid → (parent pid, command name, CPU ticks used so far) from Linux /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            name, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
    return out


def _tree(pid: int, processes: dict[int, tuple[int, str, int]]) -> set[int]:
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, _) in processes.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KB."""
    total = 0
    for member in _tree(pid, _processes()):
        try:
            with open(f"/proc/{member}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def _cpu_by_role(gateway_pid: int) -> dict[int, tuple[str, int]]:
    """pid → (role, CPU ticks so far) of the gateway (all its processes), PostgreSQL, the
    broker and this process (the publishing fleet)."""
    processes = _processes()
    gateway = _tree(gateway_pid, processes)
    out = {}
    for pid, (_, name, ticks) in processes.items():
        if pid in gateway:
            out[pid] = ("gateway", ticks)
        elif name.startswith("postgres"):
            out[pid] = ("postgres", ticks)
        elif name.startswith("mosquitto"):
            out[pid] = ("broker", ticks)
        elif name.startswith("redis-server"):
            out[pid] = ("redis", ticks)
        elif pid == os.getpid():
            out[pid] = ("fleet", ticks)
    return out


def _cpu_used(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, int]:
    """Ticks per role between two samples (a process that started in between counts from 0)."""
    used = {"gateway": 0, "postgres": 0, "broker": 0, "redis": 0, "fleet": 0}
    for pid, (role, ticks) in after.items():
        used[role] += ticks - before.get(pid, (role, 0))[1]
    return used


def bench_mqtt_ingestion(mqtt_url: str, readings: list[dict], workers: int = GATEWAY_WORKERS) -> tuple[float, float, int]:
    """(readings/s, seconds, the gateway's peak resident memory in KB, all its processes together)"""
    from django.db.models import Max

    from bench.mqtt_fleet import publish_all
    from iot_gateway.models import MeterReading
    from iot_gateway.mqtt import broker, end_sessions
    from iot_gateway.simulator import reading_publication

    payloads = [reading_publication(r) for r in readings]
    client_id = f"gw-bench-{uuid.uuid4().hex[:8]}"
    gateway = gateway_process(mqtt_url, client_id, workers)
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(gateway.pid))
            sampling.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = MeterReading.objects.count()
    base = MeterReading.objects.aggregate(top=Max("id"))["top"] or 0
    cpu_before = _cpu_by_role(gateway.pid)
    start = time.perf_counter()
    committed = [0]
    # The fleet keeps at most PUBLISH_WINDOW readings per worker ahead of the commits: beyond
    # what the broker queues for a subscriber it would drop them.
    publishing = threading.Thread(target=publish_all, args=(*broker(mqtt_url)[:2], payloads), daemon=True,
                                  kwargs={"window": PUBLISH_WINDOW * workers, "consumed": lambda: committed[0]})
    publishing.start()
    deadline = start + 600
    while committed[0] < len(payloads):
        if time.perf_counter() > deadline:
            break
        time.sleep(0.05)
        # Progress from the highest id (one index probe): counting a growing table every
        # 50 ms would take PostgreSQL's CPU from the system under test. Ids are
        # unique and drawn after ``base``, so the count is checked only once they allow it.
        committed[0] = (MeterReading.objects.aggregate(top=Max("id"))["top"] or 0) - base
        if committed[0] >= len(payloads):
            committed[0] = MeterReading.objects.count() - before
    seconds = time.perf_counter() - start
    done = MeterReading.objects.count() - before
    cpu_after = _cpu_by_role(gateway.pid)
    sampling.set()
    sampler.join()
    publishing.join(60)
    gateway.send_signal(signal.SIGTERM)
    gateway.wait(60)
    end_sessions(mqtt_url, [client_id] if workers == 1 else [f"{client_id}-{n}" for n in range(1, workers + 1)])
    tick = os.sysconf("SC_CLK_TCK")
    used = {role: ticks / tick / max(done, 1) * 1e6 for role, ticks in _cpu_used(cpu_before, cpu_after).items()}
    total = sum(used.values())
    print("  CPU per reading: " + ", ".join(f"{role} {us:.0f} µs" for role, us in used.items())
          + f"; {total:.0f} µs in all, so {os.cpu_count()} cores fit at most {os.cpu_count() * 1e6 / total:,.0f} "
          "readings/s", flush=True)
    return done / seconds, seconds, peak[0]


def bench_in_process(readings: list[dict], *, per_reading: bool, announce: bool) -> float:
    from iot_gateway import services
    from meters import live

    original = live.device_state_changed
    if not announce:
        live.device_state_changed = lambda public_id, **kw: None
    try:
        with Timer() as t:
            if per_reading:
                for r in readings:
                    services.readings_ingest([r], received_via="mqtt")
            else:
                for n in range(0, len(readings), 500):
                    services.readings_ingest(readings[n:n + 500], received_via="mqtt")
    finally:
        live.device_state_changed = original
    return len(readings) / t.seconds


def bench_relay(mqtt_url: str, utility, public_ids: list[str]) -> list[float]:
    from iot_gateway.mqtt import address, make_client, meter_topic
    from iot_gateway.relay import MqttRelayPublisher
    from meters import live

    publisher = MqttRelayPublisher(mqtt_url)
    live.relay_publisher_register(publisher)
    arrived: dict[str, float] = {}
    events = {pid: threading.Event() for pid in public_ids}
    subscriber = make_client(mqtt_url)

    def on_message(client, userdata, message):
        pid = message.topic.split("/")[3]
        if message.payload == b"on" and pid in events and not events[pid].is_set():
            arrived[pid] = time.perf_counter()
            events[pid].set()

    subscribed = threading.Event()
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *a: subscribed.set()
    subscriber.connect(*address(subscriber))
    subscriber.loop_start()
    subscriber.subscribe([(meter_topic(pid, "relay"), 1) for pid in public_ids])
    subscribed.wait(10)
    publisher(public_ids[0], "off")  # connect the publisher before timing
    time.sleep(0.5)
    samples = []
    for pid in public_ids:
        start = time.perf_counter()
        result = utility.invoke("token", "mint", {"to": device_account(pid), "asset": ENERGY, "amount": 1_000})
        assert result.ok
        live.device_state_changed(pid)  # what the funding path does after commit
        if events[pid].wait(5):
            samples.append(arrived[pid] - start)
    subscriber.disconnect()
    subscriber.loop_stop()
    live.relay_publisher_unregister(publisher)
    publisher.close()
    return samples


def bench_websocket(utility, public_ids: list[str]) -> list[float]:
    """Fund → ``device.state`` (relay on) at a browser's websocket: a real connection to
    ``/ws/devices/<id>/`` on the ASGI app, through the configured channel layer (Redis when
    REDIS_URL is set, else in-memory)."""
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from gridcoin.asgi import application
    from meters import live

    def fund(pid: str) -> None:
        result = utility.invoke("token", "mint", {"to": device_account(pid), "asset": ENERGY, "amount": 1_000})
        assert result.ok
        live.device_state_changed(pid)  # what the funding path does after commit

    async def measure() -> list[float]:
        samples = []
        for pid in public_ids:
            socket = WebsocketCommunicator(application, f"/ws/devices/{pid}/",
                                           headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])
            connected, _ = await socket.connect()
            assert connected
            await socket.receive_json_from(timeout=5)  # the state sent on connect
            start = time.perf_counter()
            await sync_to_async(fund, thread_sensitive=False)(pid)
            while True:
                message = await socket.receive_json_from(timeout=5)
                if message["event"] == "device.state" and message["payload"]["relay"] == "on":
                    break
            samples.append(time.perf_counter() - start)
            await socket.disconnect()
        return samples

    return asyncio.run(measure())


def main() -> None:
    mqtt_url = os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883"
    url = fresh_database()
    setup_django(url)
    prefix = f"B{uuid.uuid4().hex[:4].upper()}"

    with Timer() as t:
        utility, org, keys = build_fleet(METERS, prefix)
    print(f"registered {METERS:,} meters in {t.seconds:.1f} s", flush=True)
    with Timer() as t:
        fund_all(utility, list(keys), 1_000_000)
    print(f"funded them in {t.seconds:.1f} s", flush=True)
    from django.db import connection

    with connection.cursor() as cur:  # what autovacuum does on a live system after such a bulk load
        cur.execute("ANALYZE")
    with Timer() as t:
        readings = sign_readings(org, keys, READINGS_PER_METER)
    print(f"signed {len(readings):,} readings in {t.seconds:.1f} s", flush=True)

    rate, seconds, maxrss = bench_mqtt_ingestion(mqtt_url, readings)
    layer = "Redis channel layer" if gateway_redis_url() else "in-memory channel layer: no Redis answered"
    print(f"MQTT end to end, {GATEWAY_WORKERS} gateway worker(s), {layer}: {rate:,.0f} readings/s "
          f"({len(readings):,} in {seconds:.1f} s) [target ≥ 5,000]", flush=True)
    print(f"gateway peak memory (all its processes): {maxrss / 1024:.0f} MB [target ≤ 300]", flush=True)

    # In-process comparisons on fresh counters of a subset of meters.
    subset = dict(list(keys.items())[:IN_PROCESS_READINGS // 2])
    batch = sign_readings(org, subset, 2, start_counter=READINGS_PER_METER + 1)
    batch_plain = sign_readings(org, subset, 2, start_counter=READINGS_PER_METER + 3)
    single = sign_readings(org, subset, 2, start_counter=READINGS_PER_METER + 5)
    batched = bench_in_process(batch, per_reading=False, announce=True)
    quiet = bench_in_process(batch_plain, per_reading=False, announce=False)
    one_by_one = bench_in_process(single, per_reading=True, announce=True)
    print(f"in-process, one transaction per 500-reading batch: {batched:,.0f} readings/s; "
          f"without the after-commit announcements: {quiet:,.0f}/s; "
          f"one transaction per reading: {one_by_one:,.0f}/s (batch/per-reading = {batched / one_by_one:.2f}x)",
          flush=True)

    # fund → relay: devices brought to zero first (a fresh fleet: no coins, relay off)
    _, _, idle = build_fleet(RELAY_SAMPLES, f"{prefix}R")
    relay_ids = list(idle)
    samples = bench_relay(mqtt_url, utility, relay_ids)
    print(f"fund → relay command: p50 {sorted(samples)[len(samples) // 2] * 1000:.1f} ms, "
          f"p95 {p95(samples) * 1000:.1f} ms over {len(samples)} fundings [target ≤ 200 ms]", flush=True)

    _, _, idle = build_fleet(RELAY_SAMPLES, f"{prefix}W")
    samples = bench_websocket(utility, list(idle))
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"fund → websocket event: p50 {sorted(samples)[len(samples) // 2] * 1000:.1f} ms, "
          f"p95 {p95(samples) * 1000:.1f} ms over {len(samples)} fundings ({layer}) [target ≤ 300 ms]", flush=True)
    clear_retained(mqtt_url, list(keys) + relay_ids)


if __name__ == "__main__":
    main()
