#!/usr/bin/env python3
"""Performance figures of whatsapp_crm against a real Odoo server and the local Cloud API emulator.

Starts Odoo on a fresh database, creates an account that talks to the emulator, then measures:
- webhook acknowledgement latency (signed inbound text messages from many senders, sequential and
  concurrent, median / p95 / p99 and the share over 1 s, Meta's targets being <= 250 ms median and
  < 1 % over 1 s);
- duplicate deliveries (Meta retries): latency of acknowledging a payload already stored.

Figures are printed; nothing is asserted: machines are noisy, compare ratios within one run.
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev

APP_SECRET = "bench-app-secret"
PHONE_NUMBER_ID = "300000000000001"
WABA_ID = "300000000000002"


def text_payload(sender, index):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE_NUMBER_ID},
                            "contacts": [{"profile": {"name": f"Bench Customer {sender}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.BENCH{sender}{index:06d}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"Hello, message {index}"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def post_webhook(url, payload):
    body = json.dumps(payload, ensure_ascii=True).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        status = response.status
    return time.perf_counter() - started, status


def describe(name, latencies, errors):
    latencies = sorted(latencies)
    if not latencies:
        print(f"{name}: no request succeeded ({errors} errors)")
        return
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    over = sum(1 for latency in latencies if latency > 1) / len(latencies) * 100
    print(
        f"{name}: n={len(latencies)} median={statistics.median(latencies) * 1000:.0f} ms "
        f"p95={q[94] * 1000:.0f} ms p99={q[98] * 1000:.0f} ms max={latencies[-1] * 1000:.0f} ms "
        f"over 1 s={over:.1f}% errors={errors}"
    )


def run_batch(url, payloads, concurrency):
    latencies, errors = [], 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(post_webhook, url, payload) for payload in payloads]:
            try:
                latency, status = future.result()
            except OSError:
                errors += 1
                continue
            if status == 200:
                latencies.append(latency)
            else:
                errors += 1
    return latencies, errors


@contextlib.contextmanager
def odoo_server(database, port):
    odoo_bin = dev.find_odoo()
    dev.check_postgres()
    subprocess.run(["dropdb", "--if-exists", database], check=False, capture_output=True)
    base = [odoo_bin, "-d", database, f"--addons-path={dev.addons_path(odoo_bin)}", "--log-level=warn"]
    print("Installing whatsapp_crm on a fresh database...", flush=True)
    subprocess.run([*base, "-i", dev.MODULE, "--without-demo=all", "--stop-after-init"], check=True)
    server = subprocess.Popen([*base, f"--http-port={port}", "--workers=0", "--max-cron-threads=1"])
    try:
        for _attempt in range(120):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/web/login", timeout=2).read()
                break
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["dropdb", "--if-exists", database], check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    database = f"whatsapp_crm_bench_{os.getpid()}"
    with odoo_server(database, dev.free_port()) as base_url:
        rpc = xmlrpc.client.ServerProxy(f"{base_url}/xmlrpc/2/object")
        uid = xmlrpc.client.ServerProxy(f"{base_url}/xmlrpc/2/common").authenticate(database, "admin", "admin", {})
        rpc.execute_kw(
            database,
            uid,
            "admin",
            "crm.whatsapp.account",
            "create",
            [
                {
                    "name": "Bench",
                    "waba_id": WABA_ID,
                    "phone_number_id": PHONE_NUMBER_ID,
                    "access_token": "bench",
                    "app_secret": APP_SECRET,
                    "api_base_url": "http://127.0.0.1:9",
                    "lead_policy": "no_open_lead",
                }
            ],
        )
        url = f"{base_url}/{dev.MODULE}/webhook"
        senders = [f"4915{index:08d}" for index in range(args.senders)]
        payloads = [text_payload(senders[i % len(senders)], i) for i in range(args.messages)]
        post_webhook(url, text_payload("49150000000", 0))  # warm-up: routing map, caches

        started = time.perf_counter()
        latencies, errors = run_batch(url, payloads, 1)
        elapsed = time.perf_counter() - started
        describe("webhook ack, sequential", latencies, errors)
        print(f"  throughput: {len(latencies) / elapsed:.1f} messages/s")

        more = [text_payload(senders[i % len(senders)], args.messages + i) for i in range(args.messages)]
        started = time.perf_counter()
        latencies, errors = run_batch(url, more, args.concurrency)
        elapsed = time.perf_counter() - started
        describe(f"webhook ack, {args.concurrency} concurrent", latencies, errors)
        print(f"  throughput: {len(latencies) / elapsed:.1f} messages/s")

        latencies, errors = run_batch(url, payloads[: args.messages // 2], 1)
        describe("duplicate delivery ack", latencies, errors)

        counts = {
            model: rpc.execute_kw(database, uid, "admin", model, "search_count", [[]])
            for model in ("crm.whatsapp.message", "crm.whatsapp.conversation", "crm.whatsapp.webhook.event")
        }
        expected = f"{2 * args.messages + 1} messages and {args.senders + 1} conversations, warm-up included"
        print(f"stored: {counts} (expected {expected})")


if __name__ == "__main__":
    sys.exit(main())
