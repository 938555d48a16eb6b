#!/usr/bin/env python3
"""Reporting figures of whatsapp_crm on a large database.

Installs the module on a fresh database, generates (in bulk SQL) chat sessions and messages
spread over the last year, then opens, as a sales manager over XML-RPC, the two pivots managers
open most:
- Conversations by agent (rows) and month (columns), with the view's measures: response times
  (average, median, business), share within target, resolution, backlog, longest wait;
- Messages by day (rows) and direction (columns), with volume and delivery, read, failure rates.

A pivot with rows and columns asks the server for four groupings (total, rows, columns, both):
a pivot's time is the four calls one after the other. Each pivot is opened once cold, then
--repeat times; the verdict compares the slowest warm opening with the target (1.5 s).
"""

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev
from bench import wait_until_up

TARGET_SECONDS = 1.5
# the measures the pivot views show by default
CONVERSATION_MEASURES = [
    "first_response_median",
    "sla_rate",
    "resolution_hours",
    "open_count",
    "waiting_hours",
]
MESSAGE_MEASURES = ["delivered_rate", "read_rate", "failed_rate"]


@contextlib.contextmanager
def odoo_server(database, port, keep=False):
    """A fresh database with the module, served without crons (they would compete with the measures)."""
    odoo_bin = dev.find_odoo()
    dev.check_postgres()
    subprocess.run(["dropdb", "--if-exists", database], check=False, capture_output=True)
    base = [odoo_bin, "-d", database, f"--addons-path={dev.addons_path(odoo_bin)}", "--log-level=warn"]
    print("Installing whatsapp_crm on a fresh database...", flush=True)
    subprocess.run([*base, "-i", dev.MODULE, "--without-demo=all", "--stop-after-init"], check=True)
    server = subprocess.Popen([*base, f"--http-port={port}", "--workers=0", "--max-cron-threads=0"])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/web/login", seconds=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not keep:
            subprocess.run(["dropdb", "--if-exists", database], check=False)


def psql(database, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], check=True)


def setup_records(call, agents):
    """A team, an account and its agents, and a sales manager who reads the reports."""
    [team] = call("crm.team", "create", [{"name": "Bench WhatsApp team", "whatsapp_sla_minutes": 30}])
    [account] = call(
        "crm.whatsapp.account",
        "create",
        [{"name": "Bench line", "waba_id": "BENCHWABA", "phone_number_id": "BENCHPHONE", "team_id": team}],
    )
    salesman = call("ir.model.data", "check_object_reference", "sales_team", "group_sale_salesman")[1]
    manager_group = call("ir.model.data", "check_object_reference", "sales_team", "group_sale_manager")[1]
    agent_ids = call(
        "res.users",
        "create",
        [{"name": f"Agent {n}", "login": f"bench_agent_{n}", "groups_id": [(6, 0, [salesman])]} for n in range(agents)],
    )
    [manager] = call(
        "res.users",
        "create",
        [
            {
                "name": "Bench Manager",
                "login": "bench_manager",
                "password": "bench",
                "groups_id": [(6, 0, [manager_group])],
            }
        ],
    )
    # the IAP enrichment cron fails without internet
    crons = call(
        "ir.model.data",
        "search_read",
        [("module", "=", "crm_iap_enrich"), ("name", "=", "ir_cron_lead_enrichment")],
        ["res_id"],
    )
    if crons:
        call("ir.cron", "write", [crons[0]["res_id"]], {"active": False})
    return team, account, agent_ids, manager


def generate(database, team, account, agents, sessions, messages_per_session, conversations):
    agent_array = "ARRAY[" + ",".join(map(str, agents)) + "]"
    started = time.monotonic()
    psql(
        database,
        f"""
        INSERT INTO crm_whatsapp_conversation
               (account_id, company_id, wa_id, state, user_id, team_id, create_uid, write_uid, create_date,
                write_date, last_message_at)
        SELECT {account}, 1, (385900000000 + g)::text, 'closed', ({agent_array})[1 + g % {len(agents)}], {team},
               1, 1, now(), now(), now() AT TIME ZONE 'UTC'
          FROM generate_series(1, {conversations}) g;
        """,
    )
    psql(
        database,
        f"""
        WITH c AS (SELECT MIN(id) AS first FROM crm_whatsapp_conversation WHERE account_id = {account}),
        x AS (
            SELECT g, (now() AT TIME ZONE 'UTC') - random() * INTERVAL '365 days' AS t,
                   random() AS r, random() * 600 AS wait
              FROM generate_series(1, {sessions}) g
        )
        INSERT INTO crm_whatsapp_session
               (conversation_id, account_id, company_id, team_id, user_id, state, opened_at, first_inbound_at,
                opened_weekday, opened_hour, first_response_at, first_response_user_id, first_response_minutes,
                first_response_business_minutes, sla_minutes, sla_status, waiting_since, inbound_count,
                outbound_count, automatic_count, last_inbound_at, last_message_at, closed_at, close_reason,
                resolution_hours, resolution_business_hours, lead_created, csat_state, csat_rating,
                create_uid, write_uid, create_date, write_date)
        SELECT c.first + (g % {conversations}), {account}, 1, {team}, ({agent_array})[1 + g % {len(agents)}],
               CASE WHEN r < 0.05 THEN 'open' ELSE 'closed' END, t, t,
               (EXTRACT(ISODOW FROM t)::int - 1)::varchar, to_char(t, 'HH24'),
               CASE WHEN r >= 0.02 THEN t + wait * INTERVAL '1 minute' END,
               CASE WHEN r >= 0.02 THEN ({agent_array})[1 + g % {len(agents)}] END,
               CASE WHEN r >= 0.02 THEN wait END, CASE WHEN r >= 0.02 THEN wait / 3 END, 30,
               CASE WHEN r < 0.02 THEN 'pending' WHEN wait / 3 <= 30 THEN 'met' ELSE 'missed' END,
               CASE WHEN r < 0.02 THEN t END,
               {messages_per_session // 2}, {messages_per_session - messages_per_session // 2}, 1, t, t,
               CASE WHEN r >= 0.05 THEN t + INTERVAL '3 hours' END, CASE WHEN r >= 0.05 THEN 'closed' END,
               CASE WHEN r >= 0.05 THEN 3 END, CASE WHEN r >= 0.05 THEN 1.5 END,
               r < 0.2, CASE WHEN r < 0.3 THEN 'done' ELSE 'none' END,
               CASE WHEN r < 0.3 THEN (ARRAY[1, 3, 5, 5])[1 + g % 4] END,
               1, 1, now(), now()
          FROM x, c;
        """,
    )
    psql(
        database,
        f"""
        INSERT INTO crm_whatsapp_message
               (account_id, company_id, conversation_id, session_id, direction, message_type, state, timestamp,
                author_id, error_code, is_automatic, media_state, report_user_id, report_team_id,
                create_uid, write_uid, create_date, write_date)
        SELECT s.account_id, 1, s.conversation_id, s.id,
               CASE WHEN k % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
               (ARRAY['text', 'text', 'text', 'image', 'interactive', 'template'])[1 + (s.id + k) % 6],
               CASE WHEN k % 2 = 0 THEN 'received'
                    ELSE (ARRAY['read', 'read', 'delivered', 'sent', 'failed'])[1 + (s.id + k) % 5] END,
               s.first_inbound_at + k * INTERVAL '5 minutes',
               CASE WHEN k % 2 = 1 THEN s.user_id END,
               CASE WHEN k % 2 = 1 AND (s.id + k) % 5 = 4 THEN (ARRAY[131026, 131047, 130472])[1 + s.id % 3] END,
               k = 1, 'none', s.user_id, s.team_id, 1, 1, now(), now()
          FROM crm_whatsapp_session s CROSS JOIN generate_series(0, {messages_per_session - 1}) k
         WHERE s.account_id = {account};
        """,
    )
    psql(database, "ANALYZE crm_whatsapp_conversation; ANALYZE crm_whatsapp_session; ANALYZE crm_whatsapp_message;")
    return time.monotonic() - started


def count_messages(call):
    """The messages report reads hourly counts, kept as messages are stored and change status;
    messages inserted in SQL are counted by the recount an administrator can run."""
    started = time.monotonic()
    call("crm.whatsapp.message.stat", "action_rebuild", [])
    return time.monotonic() - started


def open_pivot(call, model, measures, rows, cols):
    """Seconds to read the four groupings of a pivot, and the number of cells of the full grid."""
    started = time.monotonic()
    cells = 0
    for groupby in ([], rows, cols, rows + cols):
        cells = len(call(model, "read_group", [], measures, groupby, lazy=False))
    return time.monotonic() - started, cells


def measure(name, call, model, measures, rows, cols, repeat):
    cold, cells = open_pivot(call, model, measures, rows, cols)
    warm = [open_pivot(call, model, measures, rows, cols)[0] for _ in range(repeat)]
    worst = max(warm)
    verdict = "OK" if worst <= TARGET_SECONDS else "TOO SLOW"
    print(
        f"{name:<42} cold {cold:6.3f} s | warm median {statistics.median(warm):6.3f} s, "
        f"max {worst:6.3f} s ({cells} cells) -> {verdict} (target <= {TARGET_SECONDS} s)"
    )
    return worst <= TARGET_SECONDS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--messages-per-session", type=int, default=10)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=dev.free_port())
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    database = "whatsapp_crm_bench_reporting"
    with odoo_server(database, args.port, keep=args.keep) as url:
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

        def caller(login, password):
            uid = common.authenticate(database, login, password, {})

            def call(model, method, *call_args, **kwargs):
                return models.execute_kw(database, uid, password, model, method, list(call_args), kwargs)

            return call

        admin = caller("admin", "admin")
        team, account, agents, _manager = setup_records(admin, args.agents)
        total = args.sessions * args.messages_per_session
        print(f"Generating {args.sessions:,} sessions and {total:,} messages...", flush=True)
        seconds = generate(
            database, team, account, agents, args.sessions, args.messages_per_session, args.conversations
        )
        print(f"Generated in {seconds:.0f} s; messages counted in {count_messages(admin):.0f} s.")
        print("Opening the pivots as a sales manager (record rules apply):")
        manager = caller("bench_manager", "bench")
        ok = measure(
            "Conversations pivot, agent x month",
            manager,
            "crm.whatsapp.report.conversation",
            CONVERSATION_MEASURES,
            ["user_id"],
            ["date:month"],
            args.repeat,
        )
        ok &= measure(
            "Messages pivot, day x direction",
            manager,
            "crm.whatsapp.report.message",
            MESSAGE_MEASURES,
            ["date:day"],
            ["direction"],
            args.repeat,
        )
    print("Reporting verdict:", "OK" if ok else "TOO SLOW")
    return 0


if __name__ == "__main__":
    sys.exit(main())
