"""Probes of the ingest benchmark, run inside ``odoo shell`` on the benchmark's database: the
queries of each path, counted as ``assertQueryCount`` counts them, and where a batch's time goes."""

import json

from bench_common import odoo_shell

PROBE_HEAD = r"""
import cProfile, io, json, pstats, time
from odoo.addons.whatsapp_crm.models.crm_whatsapp_webhook_event import lane_of
from odoo.addons.whatsapp_crm.tools import webhook_payload as wp

Event, Account = env["crm.whatsapp.webhook.event"], env["crm.whatsapp.account"]
account = Account.search([("phone_number_id", "=", "%(phone)s")])
counter = iter(range(10**6))

def payload(wa_id):
    n = next(counter)
    message = {
        "from": wa_id, "id": f"wamid.PROBE{wa_id}{n}", "timestamp": str(int(time.time())),
        "type": "text", "text": {"body": f"probe {n}"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": "%(phone)s"},
        "contacts": [{"profile": {"name": f"Probe {wa_id}"}, "wa_id": wa_id}],
        "messages": [message],
    }
    change = {"field": "messages", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": "%(waba)s", "changes": [change]}]}

def store(p):
    event = Event._store(json.dumps(p).encode(), p, account)
    env.flush_all()
    return event
"""

QUERY_PROBE = (
    PROBE_HEAD
    + r"""
def count(func):
    env.flush_all()
    before = env.cr.sql_log_count
    func()
    env.flush_all()
    return env.cr.sql_log_count - before

def ack(p):
    raw = json.dumps(p).encode()
    accounts = Event._payload_accounts(wp.parse_payload(raw))
    accounts[:1].app_secret
    Event._store(raw, p, accounts[:1])
    Event._wake(lane_of(p))

def process(p):
    event = store(p)
    return lambda: event._process()

results = {}
for attempt in range(2):  # the second time with warm caches, as @warmup does
    known = f"4917{attempt:08d}"
    process(payload(known))()
    process(payload(known))()
    results["ack"] = count(lambda: ack(payload(known)))
    results["known"] = count(process(payload(known)))
    new = f"4918{attempt:08d}"
    results["new"] = count(process(payload(new)))
    lead = env["crm.whatsapp.conversation"].search([("wa_id", "=", known)]).lead_id
    partner = lead.partner_id
    thread = lead.with_context(mail_create_nosubscribe=True, mail_notify_force_send=False)
    results["message_post"] = count(lambda: thread.message_post(
        author_id=partner.id, body="plain", message_type="comment", subtype_xmlid="mail.mt_comment"))
print("QUERIES " + json.dumps(results))
env.cr.rollback()
"""
)

PROFILE_PROBE = (
    PROBE_HEAD
    + r"""
known = [f"4919{n:08d}" for n in range(%(customers)s)]
for wa_id in known:  # contact, conversation, lead: known customers from now on
    store(payload(wa_id))._process()
for kind, senders in (("known", known), ("new", [f"4920{n:08d}" for n in range(%(customers)s)])):
    events = Event.browse()
    for wa_id in senders:
        events |= store(payload(wa_id))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    events._process()
    env.flush_all()
    profiler.disable()
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(%(lines)s)
    print(f"PROFILE {kind}: {len(events)} messages in one batch, {elapsed * 1000 / len(events):.1f} ms each")
    print(out.getvalue())
env.cr.rollback()
"""
)


def probe_queries(database, phone, waba):
    """``{path: queries}``: the acknowledgement, a known and a new customer's text, a plain post."""
    result = odoo_shell(database, QUERY_PROBE % {"phone": phone, "waba": waba})
    line = next((line for line in result.stdout.splitlines() if line.startswith("QUERIES ")), None)
    if not line:
        print(result.stdout[-2000:], result.stderr[-2000:])
        return {}
    return json.loads(line[len("QUERIES ") :])


def probe_profile(database, phone, waba, customers=100, lines=25):
    """Print where the time of a batch of known, then new, customers' texts goes (cProfile)."""
    result = odoo_shell(
        database, PROFILE_PROBE % {"phone": phone, "waba": waba, "customers": customers, "lines": lines}
    )
    text = result.stdout[result.stdout.find("PROFILE ") :] if "PROFILE " in result.stdout else result.stderr[-2000:]
    print(text, flush=True)
