#!/usr/bin/env python3
"""Inbox performance on a large database: 1,000,000 messages in 100,000 conversations.

Installs whatsapp_crm on a database of its own (kept for the next runs with --keep), fills it
in bulk SQL, then times, as a salesperson (their record rules applied), the server-side calls
behind the screens:
- the inbox's first page (the list view's read, default filter, 80 rows and the count);
- a search by number (any formatting) and one by message text (trigram index);
- opening a chat of 500 messages (what the chat component loads, read receipts included).

Each figure is the median of several runs with cold ORM caches, printed with a verdict against
the target (<= 300 ms). Figures only: nothing is asserted.
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as common
import dev

TARGET_MS = 300
CHAT_SIZE = 500
LIST_FIELDS = {
    "display_name": {},
    "last_message_preview": {},
    "unread_count": {},
    "waiting_since": {},
    "window_state": {},
    "user_id": {"fields": {"display_name": {}}},
    "team_id": {"fields": {"display_name": {}}},
    "tag_ids": {"fields": {"display_name": {}, "color": {}}},
    "state": {},
}
WORDS = ["sofa", "price", "delivery", "invoice", "blue", "armchair", "discount", "warranty", "table", "lamp"]


def odoo_env(odoo_bin, database):
    sys.path.insert(0, str(Path(odoo_bin).resolve().parent))
    import odoo  # noqa: PLC0415 (found through odoo-bin)

    odoo.tools.config.parse_config(common.odoo_command(odoo_bin, database)[1:])
    return odoo, odoo.modules.registry.Registry(database)


def generate(env, conversations, messages):
    """Bulk SQL: contacts, conversations and messages, as if months of chats had come in."""
    cr = env.cr
    cr.execute("SELECT count(*) FROM crm_whatsapp_message")
    if cr.fetchone()[0] >= messages:
        print("Data already generated.")
        return
    started = time.perf_counter()
    # the IAP enrichment cron needs internet: never in a benchmark
    cron = env.ref("crm_iap_enrich.ir_cron_lead_enrichment", raise_if_not_found=False)
    if cron:
        cron.active = False
    team = env["crm.team"].create({"name": "Bench WhatsApp Team"})
    salespeople = env["res.users"]
    for index in range(10):
        salespeople |= env["res.users"].create(
            {
                "name": f"Bench Salesperson {index}",
                "login": f"bench_sales_{index}",
                "groups_id": [(6, 0, [env.ref("sales_team.group_sale_salesman").id])],
            }
        )
    env["crm.team.member"].create([{"crm_team_id": team.id, "user_id": user.id} for user in salespeople])
    account = env["crm.whatsapp.account"].create(
        {
            "name": "Bench line",
            "waba_id": "400000000000001",
            "phone_number_id": "400000000000002",
            "access_token": "bench",
            "app_secret": "bench",
            "team_id": team.id,
        }
    )
    env.flush_all()
    user_ids = "ARRAY[" + ",".join(str(i) for i in salespeople.ids) + "]"
    words = "(ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "])"
    print(f"Generating {conversations} contacts and conversations...", flush=True)
    cr.execute(
        """
        INSERT INTO res_partner (name, complete_name, mobile, active, type, is_company,
                                 create_date, write_date, create_uid, write_uid)
        SELECT 'Bench Customer ' || g, 'Bench Customer ' || g, '+32 470 ' || lpad(g::text, 6, '0'),
               true, 'contact', false, now(), now(), 1, 1
          FROM generate_series(1, %(n)s) g
        """,
        {"n": conversations},
    )
    cr.execute(
        f"""
        INSERT INTO crm_whatsapp_conversation (account_id, company_id, wa_id, partner_id, profile_name, user_id,
               team_id, state, last_inbound_at, last_message_at, window_expires_at, unread_count,
               last_message_preview, waiting_since, create_date, write_date, create_uid, write_uid)
        SELECT %(account)s, %(company)s, '32470' || lpad(g::text, 6, '0'), p.id, p.name,
               CASE WHEN g %% 10 = 0 THEN NULL ELSE ({user_ids})[1 + g %% 10] END,
               %(team)s, (ARRAY['new', 'open', 'pending', 'closed'])[1 + g %% 4],
               now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval,
               now() - (g || ' minutes')::interval + interval '24 hours', g %% 3,
               'Hello, about the ' || {words}[1 + g %% {len(WORDS)}],
               CASE WHEN g %% 4 IN (0, 1) THEN now() - (g || ' minutes')::interval END,
               now(), now(), 1, 1
          FROM generate_series(1, %(n)s) g
          JOIN res_partner p ON p.name = 'Bench Customer ' || g
        """,
        {"account": account.id, "company": account.company_id.id, "team": team.id, "n": conversations},
    )
    cr.execute("SELECT min(id) FROM crm_whatsapp_conversation WHERE account_id = %s", [account.id])
    first = cr.fetchone()[0]
    print(f"Generating {messages} messages (one chat of {CHAT_SIZE})...", flush=True)
    # conversation ``first`` gets CHAT_SIZE messages, the others share the rest
    cr.execute(
        f"""
        INSERT INTO crm_whatsapp_message (account_id, company_id, conversation_id, partner_id, direction, wamid,
               message_type, body, timestamp, state, media_state, create_date, write_date, create_uid, write_uid)
        SELECT %(account)s, %(company)s, c.id, c.partner_id,
               CASE WHEN g %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,
               'wamid.BENCH' || g, 'text',
               'Message ' || g || ' about the ' || {words}[1 + (g * 7) %% {len(WORDS)}]
                   || ' w' || (g::bigint * 7919) %% 50000,
               now() - ((%(m)s - g) || ' seconds')::interval,
               CASE WHEN g %% 2 = 0 THEN 'received' ELSE 'read' END, 'none', now(), now(), 1, 1
          FROM generate_series(1, %(m)s) g
          JOIN crm_whatsapp_conversation c
            ON c.id = CASE WHEN g <= {CHAT_SIZE} THEN %(first)s
                           ELSE %(first)s + 1 + (g %% (%(n)s - 1)) END
        """,
        {"account": account.id, "company": account.company_id.id, "m": messages, "n": conversations, "first": first},
    )
    # what the ORM keeps as the messages come in, here for the messages inserted in bulk
    env["crm.whatsapp.conversation"]._whatsapp_words_rebuild()
    cr.execute("ANALYZE res_partner; ANALYZE crm_whatsapp_conversation; ANALYZE crm_whatsapp_message")
    env.invalidate_all()
    print(f"Generated in {time.perf_counter() - started:.0f} s", flush=True)


def timed(env, function, runs):
    """Median and worst time of ``function`` (its writes flushed), each run rolled back."""
    timings = []
    for _run in range(runs + 1):  # the first run warms the registry, not the ORM cache
        env.invalidate_all()
        with contextlib.closing(env.cr.savepoint(flush=False)):
            started = time.perf_counter()
            function()
            env.flush_all()
            timings.append((time.perf_counter() - started) * 1000)
        env.cr.precommit.clear()
    env.invalidate_all()
    return statistics.median(timings[1:]), max(timings[1:])


def measure(odoo, registry, runs):
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        user = env["res.users"].search([("login", "=", "bench_sales_1")])
        Conversation = env["crm.whatsapp.conversation"].with_user(user).with_context(lang="en_US", tz="UTC")
        owned = env["crm.whatsapp.conversation"].search([("user_id", "=", user.id)], order="id", limit=1)
        cr.execute("SELECT min(id) FROM crm_whatsapp_conversation WHERE user_id IS NOT NULL")
        chat = env["crm.whatsapp.conversation"].browse(cr.fetchone()[0])
        chat.user_id = user  # the 500-message chat is the salesperson's
        env.flush_all()
        number = owned.wa_id
        spaced = f"+{number[:2]} {number[2:5]} {number[5:7]} {number[7:9]} {number[9:]}"
        word = f"w{(owned.message_ids_wa[:1].body or 'w1').rsplit('w', 1)[-1]}"

        def page(domain):
            return lambda: Conversation.web_search_read(domain, LIST_FIELDS, limit=80, count_limit=10001)

        cases = [
            ("inbox first page (not closed)", page([("state", "!=", "closed")])),
            ("inbox: my conversations", page([("user_id", "=", user.id), ("state", "!=", "closed")])),
            ("search by number, spaced", page([("inbox_search", "ilike", spaced)])),
            ("search by message text (rare word)", page([("inbox_search", "ilike", word)])),
            ("search by message text (common word)", page([("message_text", "ilike", "warranty")])),
            (f"open a chat of {CHAT_SIZE} messages", lambda: chat.with_user(user).whatsapp_chat_load()),
        ]
        print(f"\nAs {user.name} (salesperson), median of {runs} runs, cold ORM cache:")
        print(f"{'case':45} {'median':>9} {'max':>9}  verdict (<= {TARGET_MS} ms)")
        failed = 0
        for name, function in cases:
            median, worst = timed(env, function, runs)
            verdict = "OK" if median <= TARGET_MS else "TOO SLOW"
            failed += verdict != "OK"
            print(f"{name:45} {median:7.1f} ms {worst:7.1f} ms  {verdict}", flush=True)
        cr.rollback()
        return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=f"{dev.MODULE}_bench_inbox")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database for the next run")
    args = parser.parse_args()
    odoo_bin = dev.find_odoo()
    dev.check_postgres()
    if not args.keep or not common.database_exists(args.database):
        common.install_fresh(odoo_bin, args.database)
    odoo, registry = odoo_env(odoo_bin, args.database)
    try:
        with registry.cursor() as cr:
            generate(odoo.api.Environment(cr, odoo.SUPERUSER_ID, {}), args.conversations, args.messages)
        failed = measure(odoo, registry, args.runs)
    finally:
        if not args.keep:
            odoo.sql_db.close_all()
            common.drop_database(args.database)
    print(f"\n{failed} of 6 over target" if failed else "\nAll within target.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
