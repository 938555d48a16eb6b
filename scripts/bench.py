#!/usr/bin/env python3
"""Performance figures of whatsapp_crm against a real Odoo server and the local Cloud API emulator.

Starts Odoo on a fresh database, creates an account that talks to the emulator, then measures:
- webhook acknowledgement latency (signed inbound text messages from many senders, sequential and
  concurrent, median / p95 / p99 and the share over 1 s, Meta's targets being <= 250 ms median and
  < 1 % over 1 s);
- duplicate deliveries (Meta retries): latency of acknowledging a payload already stored;
- the outbound queue: one message to each of many customers through the mass composer, sent by
  the cron over HTTP to the emulator, whose throughput cap equals the account's limit: achieved
  rate, the busiest second seen by the emulator, and how many errors (130429...) it answered.

Figures are printed; nothing is asserted: machines are noisy, compare ratios within one run.
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as common
import dev
from bench_common import wait_until_up  # also the other benchmarks' import

APP_SECRET = "bench-app-secret"
PHONE_NUMBER_ID = "300000000000001"
WABA_ID = "300000000000002"


def text_payload(sender, index):
    wamid, name = f"wamid.BENCH{sender}{index:06d}", f"Bench Customer {sender}"
    return common.text_payload(sender, wamid, name, f"Hello, message {index}", PHONE_NUMBER_ID, WABA_ID)


def post_webhook(url, payload):
    body = json.dumps(payload, ensure_ascii=True).encode()
    request = urllib.request.Request(url, data=body, headers=common.signed_headers(body, APP_SECRET))
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


def wait_processed(call, seconds=300):
    """Until the webhook events are processed (or ``seconds``)."""
    deadline = time.monotonic() + seconds
    pending = [("state", "=", "pending")]
    while time.monotonic() < deadline and call("crm.whatsapp.webhook.event", "search_count", pending):
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--recipients", type=int, default=200, help="customers of the outbound run")
    parser.add_argument("--throughput", type=int, default=20, help="account limit and emulator cap, messages/s")
    args = parser.parse_args()

    database = f"whatsapp_crm_bench_{os.getpid()}"
    try:
        with common.odoo_server(database, "--workers=0", "--max-cron-threads=1", install=True) as port:
            measure(database, port, args)
    finally:
        common.drop_database(database)


def measure(database, port, args):
    base_url = f"http://127.0.0.1:{port}"
    call = common.rpc_caller(port, database)
    common.create_account(call, PHONE_NUMBER_ID, WABA_ID, APP_SECRET)
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

    wait_processed(call)  # the lane crons process what the webhook acknowledged
    counts = {
        model: call(model, "search_count", [])
        for model in ("crm.whatsapp.message", "crm.whatsapp.conversation", "crm.whatsapp.webhook.event")
    }
    expected = f"{2 * args.messages + 1} messages and {args.senders + 1} conversations, warm-up included"
    print(f"stored: {counts} (expected {expected})")

    with emulator(url, args.throughput) as emulator_url:
        bench_outbound(call, url, emulator_url, args)


@contextlib.contextmanager
def emulator(webhook_url, throughput):
    port = dev.free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(dev.REPO / dev.MODULE / "tests" / "cloud_api_emulator.py"),
            f"--port={port}",
            f"--webhook-url={webhook_url}",
            f"--app-secret={APP_SECRET}",
            "--access-token=bench",
            f"--phone-number-id={PHONE_NUMBER_ID}",
            f"--waba-id={WABA_ID}",
            f"--throughput={throughput}",
            "--no-window",  # the customers wrote to Odoo directly, not through the emulator
        ]
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_emulator/requests", seconds=5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def bench_outbound(call, webhook_url, emulator_url, args):
    recipients = [f"4916{index:08d}" for index in range(args.recipients)]
    run_batch(webhook_url, [text_payload(wa_id, 900000) for wa_id in recipients], args.concurrency)
    wait_processed(call)  # the lane crons create the conversations
    conversation_ids = call("crm.whatsapp.conversation", "search", [("wa_id", "in", recipients)])
    account_id = call("crm.whatsapp.account", "search", [], limit=1)[0]
    limits = {"api_base_url": emulator_url, "throughput_limit": args.throughput}
    call("crm.whatsapp.account", "write", [account_id], limits)
    context = {"active_model": "crm.whatsapp.conversation", "active_ids": conversation_ids}
    composer = call("crm.whatsapp.composer", "create", {"body": "Thank you for your message!"}, context=context)
    started = time.perf_counter()
    call("crm.whatsapp.composer", "action_send", [composer])
    queued = [("direction", "=", "outbound"), ("state", "=", "queued")]
    while time.perf_counter() - started < 300 and call("crm.whatsapp.message", "search_count", queued):
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    groups = call("crm.whatsapp.message", "read_group", [("direction", "=", "outbound")], ["state"], ["state"])
    with urllib.request.urlopen(f"{emulator_url}/_emulator/requests", timeout=10) as response:
        requests = [r for r in json.load(response)["requests"] if r["path"].endswith("/messages")]
    times = sorted(r["received_at"] for r in requests)
    busiest = max((sum(1 for t in times if start <= t < start + 1) for start in times), default=0)
    refused = sum(1 for r in requests if r["status"] != 200)  # 130429 or any other error
    print(
        f"outbound queue: {len(conversation_ids)} customers, limit {args.throughput}/s: "
        f"{len(requests)} requests in {elapsed:.1f} s = {len(requests) / elapsed:.1f} messages/s, "
        f"busiest second {busiest}, error answers {refused}"
    )
    print(f"  outbound states: { {g['state']: g['state_count'] for g in groups} }")


if __name__ == "__main__":
    sys.exit(main())
