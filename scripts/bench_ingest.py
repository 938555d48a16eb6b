#!/usr/bin/env python3
"""Ingest figures of whatsapp_crm: how fast the webhook acknowledges and the lanes process.

Runs Odoo in prefork (--workers=2, --max-cron-threads=1, then 2) on a fresh database, and prints
side by side, with a verdict against each target of the ingest design:
- ceiling: the highest open-loop rate (25, 50, 75, 100, 125, 150, 200, ... requests/s) that Odoo's
  own /web/health holds for a burst with p99 <= 1 s and every answer 200;
- references: the same measurement on Odoo's cheapest route through its database dispatch,
  and on the webhook with processing stopped (no cron worker);
- burst absorption: the same measurement on the webhook (signed single-message deliveries from
  200 distinct customers, new in the first burst), target >= 0.7 x the ceiling; then every
  acknowledged message must be stored and posted once, and the backlog's drain time is printed;
- processing throughput: messages fully processed per second from a backlog, known customers
  (target >= 0.4 x ceiling) and new customers (>= 0.2 x ceiling), with 1 and 2 cron workers;
- latency at an open-loop 50 deliveries/s: ack p50 <= 15 ms, p99 <= 60 ms, and processing lag
  (receipt to posted) p95 <= 2 s;
- queries, counted as assertQueryCount counts them (the suite pins the first two exactly): the
  acknowledgement (<= 5), a known customer's text (<= the same customer's plain message_post on
  the lead + 6), a new customer's first text.

Figures are printed; nothing is asserted. The machine's load matters: compare within one run.
"""

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as common
import dev
from bench_ingest_probes import probe_profile, probe_queries

APP_SECRET = "bench-app-secret"
PHONE_NUMBER_ID = "300000000000011"
WABA_ID = "300000000000012"
RATES = (25, 50, 75, 100, 125, 150, 200, 250, 300, 400, 500, 600, 800)


def payload(sender, index, name=None):
    wamid, body = f"wamid.BENCH{sender}x{index:07d}", f"Hello, message {index}"
    return common.text_payload(sender, wamid, name or f"Bench {sender}", body, PHONE_NUMBER_ID, WABA_ID)


class Client:
    """Open-loop HTTP load: requests start at their scheduled time, whether earlier ones answered or not."""

    def __init__(self, port, threads=200):
        self.port = port
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def open_loop(self, rate, seconds, make_request):
        """Fire ``rate`` requests/s for ``seconds``; return [(scheduled, latency, status, key)]."""
        results, lock, futures = [], threading.Lock(), []
        start = time.perf_counter() + 0.05
        total = int(rate * seconds)

        def one(index, scheduled):
            method, path, body, headers, key = make_request(index)
            try:
                status = self.request(method, path, body, headers)
            except OSError:
                status = 0
            with lock:
                results.append((scheduled, time.perf_counter() - scheduled, status, key))

        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(self.pool.submit(one, index, scheduled))
        concurrent.futures.wait(futures)
        return results


def quantile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def holds(results):
    latencies = [latency for _s, latency, _status, _k in results]
    ok = all(status == 200 for _s, _l, status, _k in results)
    return ok and quantile(latencies, 0.99) <= 1.0, quantile(latencies, 0.5), quantile(latencies, 0.99)


def ceiling(client, make_request, seconds, label):
    best = 0
    for rate in RATES:
        results = client.open_loop(rate, seconds, make_request)
        ok, p50, p99 = holds(results)
        errors = sum(1 for r in results if r[2] != 200)
        print(
            f"  {label} {rate:>4}/s: p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms  non-200 {errors}", flush=True
        )
        if not ok:
            break
        best = rate
    return best


def odoo(database, cron_threads, install=False):
    """Odoo in prefork on ``database``: yields its port."""
    options = ["--workers=2", f"--max-cron-threads={cron_threads}", "--db_maxconn=16"]
    options.append(f"--gevent-port={dev.free_port()}")
    return common.odoo_server(database, *options, install=install, start_seconds=90, stop_seconds=60)


class Database:
    def __init__(self, name):
        self.connection = psycopg2.connect(dbname=name)
        self.connection.autocommit = True

    def one(self, query, *params):
        with self.connection.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchone()

    def pending(self):
        return self.one("SELECT count(*) FROM crm_whatsapp_webhook_event WHERE state IN ('pending', 'failed')")[0]

    def processed(self):
        return self.one("SELECT count(*) FROM crm_whatsapp_webhook_event WHERE state IN ('done', 'ignored')")[0]

    def drain(self, timeout=600):
        started = time.perf_counter()
        while self.pending() and time.perf_counter() - started < timeout:
            time.sleep(0.2)
        return time.perf_counter() - started

    def lanes(self, active):
        self.one(
            "UPDATE ir_cron SET active = %s, nextcall = now() AT TIME ZONE 'UTC' "
            "WHERE cron_name LIKE 'WhatsApp: process webhook events%%' RETURNING 1",
            active,
        )

    def wake_lanes(self):
        self.one(
            "INSERT INTO ir_cron_trigger (cron_id, call_at) SELECT id, now() AT TIME ZONE 'UTC' FROM ir_cron "
            "WHERE cron_name LIKE 'WhatsApp: process webhook events%%' RETURNING 1"
        )
        # cron workers LISTEN on the postgres database, as Odoo's ir.cron._notifydb() notifies them
        name = self.one("SELECT current_database()")[0]
        with contextlib.closing(psycopg2.connect(dbname="postgres")) as connection:
            connection.autocommit = True
            with connection.cursor() as cr:
                cr.execute("SELECT pg_notify('cron_trigger', %s)", [name])


def setup(database, port):
    call = common.rpc_caller(port, database)
    salesman = call("res.users", "create", {"name": "Bench Sales", "login": "bench_sales"})
    team = call("crm.team", "create", {"name": "Bench team", "user_id": salesman})
    values = {"team_id": team, "user_ids": [(6, 0, [salesman])]}
    common.create_account(call, PHONE_NUMBER_ID, WABA_ID, APP_SECRET, **values)
    # Odoo's IAP enrichment fails without internet: off, as in demos
    Database(database).one("UPDATE ir_cron SET active = false WHERE cron_name ILIKE '%%enrich%%' RETURNING 1")


def webhook_request(senders, offset):
    def make(index):
        sender = senders[index % len(senders)]
        body = json.dumps(payload(sender, offset + index)).encode()
        headers = common.signed_headers(body, APP_SECRET)
        return "POST", f"/{dev.MODULE}/webhook", body, headers, f"wamid.BENCH{sender}x{offset + index:07d}"

    return make


def health_request(_index):
    return "GET", "/web/health", None, {}, None


def database_route_request(_index):
    """Odoo's cheapest route through its database dispatch (registry, environment, routing, a
    transaction), with no work of its own: what any route of a module pays before its first line."""
    body = b'{"jsonrpc": "2.0", "method": "call", "params": {}}'
    return "POST", "/web/webclient/version_info", body, {"Content-Type": "application/json"}, None


def post_backlog(client, senders, count, offset):
    make = webhook_request(senders, offset)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: client.request(*make(i)[:4]), range(count)))
    return sum(1 for status in statuses if status == 200)


def throughput(client, db, senders, count, offset, seconds):
    """Fill a backlog with the lanes off, then let them process it: messages per second."""
    db.lanes(False)
    posted = post_backlog(client, senders, count, offset)
    before = db.processed()
    db.lanes(True)
    db.wake_lanes()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds and db.pending():
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    done = db.processed() - before
    return done / elapsed, done, posted, elapsed


def verdict(value, target, higher=True):
    ok = value >= target if higher else value <= target
    return "OK" if ok else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst-seconds", type=float, default=10, help="length of each ceiling step")
    parser.add_argument("--throughput-seconds", type=float, default=60)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true", help="shorter steps (3 s, 20 s, 10 s) for a first look")
    parser.add_argument("--profile", action="store_true", help="also print where a batch's processing time goes")
    args = parser.parse_args()
    if args.quick:
        args.burst_seconds, args.throughput_seconds, args.latency_seconds = 3, 20, 10
    database = f"whatsapp_crm_bench_ingest_{os.getpid()}"
    figures = {}
    try:
        with odoo(database, 1, install=True) as port:
            setup(database, port)
            client, db = Client(port), Database(database)
            print("Queries (as assertQueryCount counts them):", flush=True)
            figures["queries"] = probe_queries(database, PHONE_NUMBER_ID, WABA_ID)
            print(f"  {figures['queries']}", flush=True)
            if args.profile:
                print("Profile of one batch (cumulative time)", flush=True)
                probe_profile(database, PHONE_NUMBER_ID, WABA_ID)
            print(f"Ceiling: /web/health, open loop, {args.burst_seconds:.0f} s per rate", flush=True)
            figures["ceiling"] = ceiling(client, health_request, args.burst_seconds, "health ")
            print("Reference: /web/webclient/version_info (Odoo's database dispatch alone)", flush=True)
            figures["database_route"] = ceiling(client, database_route_request, args.burst_seconds, "db route")
            print("Burst absorption: the webhook, 200 customers (new in the first burst)", flush=True)
            customers = [f"4915{n:08d}" for n in range(200)]
            acked, offset = [], [0]

            def burst_request(index):
                return webhook_request(customers, offset[0])(index)

            best = 0
            for rate in RATES:
                results = client.open_loop(rate, args.burst_seconds, burst_request)
                offset[0] += len(results)
                acked += [key for _s, _l, status, key in results if status == 200]
                ok, p50, p99 = holds(results)
                errors = sum(1 for r in results if r[2] != 200)
                print(
                    f"  webhook {rate:>4}/s: p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms  non-200 {errors}  "
                    f"backlog {db.pending()}",
                    flush=True,
                )
                if not ok:
                    break
                best = rate
            figures["burst"] = best
            drain = db.drain()
            stored = db.one(
                "SELECT count(*), count(DISTINCT wamid), count(mail_message_id) FROM crm_whatsapp_message "
                "WHERE direction = 'inbound' AND wamid = ANY(%s)",
                acked,
            )
            figures["drain"] = (len(acked), stored, drain)
            print(
                f"  acknowledged {len(acked)}; stored {stored[0]}, distinct {stored[1]}, posted {stored[2]}; "
                f"backlog drained in {drain:.1f} s",
                flush=True,
            )

            print(f"Latency: open loop 50/s for {args.latency_seconds:.0f} s (known customers)", flush=True)
            figures["latency"] = latency(client, db, customers, args.latency_seconds)

            print("Throughput, 1 cron worker", flush=True)
            figures["throughput_1"] = measure_throughput(client, db, args.throughput_seconds, 1_000_000)
        with odoo(database, 0) as port:
            client = Client(port)
            print("Reference: the webhook with processing stopped (no cron worker), known customers", flush=True)
            figures["ack_alone"] = ceiling(client, webhook_request(customers, 4_000_000), args.burst_seconds, "webhook")
        with odoo(database, 2) as port:
            client, db = Client(port), Database(database)
            db.wake_lanes()
            db.drain()  # what the reference above stored
            print("Throughput, 2 cron workers", flush=True)
            figures["throughput_2"] = measure_throughput(client, db, args.throughput_seconds, 2_000_000)
    finally:
        common.drop_database(database)
    report(figures)


def measure_throughput(client, db, seconds, base):
    known = [f"4915{n:08d}" for n in range(200)]  # customers of the bursts: contact, conversation, lead
    known_rate, done, posted, elapsed = throughput(client, db, known, int(max(seconds * 60, 600)), base, seconds)
    print(f"  known customers: {known_rate:.1f} messages/s ({done} of {posted} in {elapsed:.0f} s)", flush=True)
    db.drain()
    new = [f"49{base // 1_000_000}{n:09d}" for n in range(int(max(seconds * 25, 300)))]
    new_rate, done, posted, elapsed = throughput(client, db, new, len(new), base + 500_000, seconds)
    print(f"  new customers: {new_rate:.1f} messages/s ({done} of {posted} in {elapsed:.0f} s)", flush=True)
    db.drain()
    return known_rate, new_rate


def latency(client, db, customers, seconds):
    db.drain()
    seen, stop = {}, threading.Event()

    def watch():
        connection = psycopg2.connect(dbname=db.connection.info.dbname)
        connection.autocommit = True
        last = db.one("SELECT coalesce(max(id), 0) FROM crm_whatsapp_message")[0]
        with connection.cursor() as cr:
            while not stop.is_set():
                cr.execute(
                    "SELECT id, wamid FROM crm_whatsapp_message WHERE id > %s AND mail_message_id IS NOT NULL "
                    "ORDER BY id",
                    [last],
                )
                now = time.perf_counter()
                for row_id, wamid in cr.fetchall():
                    seen.setdefault(wamid, now)
                    last = max(last, row_id)
                time.sleep(0.05)
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    results = client.open_loop(50, seconds, webhook_request(customers, 3_000_000))
    db.drain()
    time.sleep(0.3)
    stop.set()
    watcher.join()
    acks = [latency for _s, latency, status, _k in results if status == 200]
    lags = [seen[key] - scheduled for scheduled, _l, status, key in results if status == 200 and key in seen]
    figures = (quantile(acks, 0.5), quantile(acks, 0.99), quantile(lags, 0.95), len(lags), len(results))
    print(
        f"  ack p50 {figures[0] * 1000:.0f} ms, p99 {figures[1] * 1000:.0f} ms; lag p95 {figures[2]:.2f} s "
        f"({figures[3]} of {figures[4]} seen posted)",
        flush=True,
    )
    return figures


def report(figures):
    ceiling_rate = figures.get("ceiling") or 0
    print("\n=== Ingest figures and verdicts ===")
    print(f"ceiling (/web/health, p99 <= 1 s, all 200): {ceiling_rate}/s")
    burst = figures.get("burst", 0)
    print(
        f"burst absorption (webhook): {burst}/s = {burst / max(ceiling_rate, 1):.2f} x ceiling "
        f"(target >= 0.7): {verdict(burst, 0.7 * ceiling_rate)}"
    )
    if figures.get("database_route"):
        reference = figures["database_route"]
        print(
            f"  reference: Odoo's database dispatch alone (/web/webclient/version_info) holds {reference}/s "
            f"= {reference / max(ceiling_rate, 1):.2f} x ceiling; the webhook holds {burst / reference:.2f} x that"
        )
    if figures.get("ack_alone"):
        alone = figures["ack_alone"]
        print(
            f"  reference: the webhook with processing stopped holds {alone}/s = {alone / max(ceiling_rate, 1):.2f} x "
            "ceiling: the rest of the gap is the cron worker's share of the 2 cores during the bursts"
        )
    if "drain" in figures:
        acked, stored, drain = figures["drain"]
        once = stored[0] == stored[1] == stored[2] == acked
        print(
            f"  every acknowledged message stored and posted once: {'OK' if once else 'MISSED'} "
            f"({acked} acked, {stored[0]} stored, {stored[2]} posted); drained in {drain:.1f} s"
        )
    for workers in (1, 2):
        if f"throughput_{workers}" in figures:
            known, new = figures[f"throughput_{workers}"]
            print(
                f"throughput, {workers} cron worker(s): known {known:.1f}/s = {known / max(ceiling_rate, 1):.2f} x "
                f"(target >= 0.4): {verdict(known, 0.4 * ceiling_rate)}; new {new:.1f}/s = "
                f"{new / max(ceiling_rate, 1):.2f} x (target >= 0.2): {verdict(new, 0.2 * ceiling_rate)}"
            )
    if "throughput_1" in figures and "throughput_2" in figures:
        (k1, n1), (k2, n2) = figures["throughput_1"], figures["throughput_2"]
        print(f"  2 / 1 cron workers: known {k2 / max(k1, 0.01):.2f}, new {n2 / max(n1, 0.01):.2f}")
    if "latency" in figures:
        p50, p99, lag, _seen, _total = figures["latency"]
        print(
            f"latency at 50/s: ack p50 {p50 * 1000:.0f} ms (<= 15): {verdict(p50, 0.015, False)}; "
            f"p99 {p99 * 1000:.0f} ms (<= 60): {verdict(p99, 0.060, False)}; "
            f"lag p95 {lag:.2f} s (<= 2): {verdict(lag, 2, False)}"
        )
    queries = figures.get("queries") or {}
    if queries:
        baseline = queries["message_post"]
        print(
            f"queries: ack {queries['ack']} (<= 5): {verdict(queries['ack'], 5, False)}; known customer "
            f"{queries['known']} vs plain message_post {baseline} (<= {baseline + 6}): "
            f"{verdict(queries['known'], baseline + 6, False)}; new customer {queries['new']}"
        )


if __name__ == "__main__":
    sys.exit(main())
