"""Processing lanes on real committed transactions: concurrent workers, killed workers, replays."""

import contextlib
import random
import threading
import time
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.api import Transaction
from odoo.tests import TransactionCase, tagged

from ..models import crm_whatsapp_webhook_event as event_module
from ..models.crm_whatsapp_webhook_event import LANES, lane_of
from .common import encode_payload
from .webhook_common import WebhookPayloads

PHONE_NUMBER_ID = "109000000000777"
WABA_ID = "209000000000777"
PHONE_NUMBER_ID_2 = "109000000000778"
WABA_ID_2 = "209000000000778"
WA_ID_LONG = "5531991234567"  # Brazil, with the mobile's ninth digit
WA_ID_SHORT = "553191234567"  # the same number as WhatsApp may report it


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookConcurrency(TransactionCase, WebhookPayloads):
    """Each worker has its own cursor and commits, as webhook requests and cron workers do; cleaned afterwards."""

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": "Concurrency team"})
            account = env["crm.whatsapp.account"].create(
                {
                    "name": "Concurrency line",
                    "waba_id": WABA_ID,
                    "phone_number_id": PHONE_NUMBER_ID,
                    "access_token": "token",
                    "app_secret": "secret",
                    "team_id": team.id,
                    "lead_policy": "no_open_lead",
                }
            )
            second = account.copy(
                {"name": "Concurrency line 2", "waba_id": WABA_ID_2, "phone_number_id": PHONE_NUMBER_ID_2}
            )
            self.account_id, self.second_account_id, self.team_id = account.id, second.id, team.id
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["crm.whatsapp.account"].browse([self.account_id, self.second_account_id])
            conversations = env["crm.whatsapp.conversation"].search([("account_id", "in", account.ids)])
            partners = conversations.partner_id
            leads = env["crm.lead"].with_context(active_test=False).search([("team_id", "=", self.team_id)])
            leads.unlink()
            account.unlink()  # cascades to conversations, messages and events
            partners.unlink()
            env["crm.team"].browse(self.team_id).unlink()

    def _cursor(self):
        cr = self.registry.cursor()
        # the main thread holds the registry lock while tests run: give the env its registry directly
        cr.transaction = Transaction(self.registry)
        return cr, api.Environment(cr, SUPERUSER_ID, {})

    def _payload(self, message, wa_id, second=False, name="Rita Concurrent"):
        phone_number_id, waba_id = (PHONE_NUMBER_ID_2, WABA_ID_2) if second else (PHONE_NUMBER_ID, WABA_ID)
        value = self.messages_value([message], wa_id=wa_id, name=name, phone_number_id=phone_number_id)
        return self.envelope(value, waba_id=waba_id)

    def _store(self, payload, second=False, barrier=None):
        """Store and commit a delivery as the controller does; return its event id."""
        cr, env = self._cursor()
        with cr:
            account = env["crm.whatsapp.account"].browse(self.second_account_id if second else self.account_id)
            if barrier:
                env["crm.whatsapp.webhook.event"].search_count([])  # both transactions started
                barrier.wait(timeout=30)
            event = env["crm.whatsapp.webhook.event"]._store(encode_payload(payload), payload, account)
            cr.commit()  # pylint: disable=invalid-commit
            return event.id

    def _run(self, lane=None, barrier=None):
        """A cron worker running a lane (all lanes: None)."""
        cr, env = self._cursor()
        with cr:
            if barrier:
                barrier.wait(timeout=30)
            env["crm.whatsapp.webhook.event"]._cron_process(lane=lane)

    def _in_threads(self, *calls):
        threads = [threading.Thread(target=func, args=args) for func, *args in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    def _all_lanes_at_once(self):
        barrier = threading.Barrier(LANES)
        self._in_threads(*[(self._run, lane, barrier) for lane in range(LANES)])

    def _read(self, func):
        cr, env = self._cursor()
        with cr:
            return func(env)

    def test_concurrent_first_messages_one_contact_conversation_lead(self):
        wa_ids = [WA_ID_LONG, WA_ID_SHORT, WA_ID_LONG, WA_ID_SHORT]
        barrier = threading.Barrier(len(wa_ids))
        payloads = [self._payload(self.inbound("text", {"body": f"hi {w}"}, wa_id=w), w) for w in wa_ids]
        self._in_threads(*[(self._store, payload, False, barrier) for payload in payloads])
        self._all_lanes_at_once()

        def check(env):
            events = env["crm.whatsapp.webhook.event"].search([("account_id", "=", self.account_id)])
            self.assertEqual(events.mapped("state"), ["done"] * len(wa_ids))
            conversations = env["crm.whatsapp.conversation"].search([("account_id", "=", self.account_id)])
            self.assertEqual(len(conversations), 1, "one conversation for one number")
            messages = env["crm.whatsapp.message"].search([("account_id", "=", self.account_id)])
            self.assertEqual(len(messages), len(wa_ids))
            self.assertEqual(messages.conversation_id, conversations)
            self.assertEqual(env["res.partner"].search_count([("name", "=", "Rita Concurrent")]), 1, "one contact")
            leads = env["crm.lead"].search([("team_id", "=", self.team_id)])
            self.assertEqual(len(leads), 1, "one lead")
            self.assertEqual(messages.lead_id, leads)

        self._read(check)

    def test_concurrent_first_messages_to_two_of_our_numbers_one_contact(self):
        """The same customer writes to two of our numbers at once: two conversations, one contact."""
        runs = [(WA_ID_LONG, False), (WA_ID_SHORT, True), (WA_ID_SHORT, False), (WA_ID_LONG, True)] * 2
        barrier = threading.Barrier(len(runs))
        self._in_threads(
            *[
                (self._store, self._payload(self.inbound("text", {"body": "hi"}, wa_id=w), w, second), second, barrier)
                for w, second in runs
            ]
        )
        self._all_lanes_at_once()

        def check(env):
            accounts = [self.account_id, self.second_account_id]
            events = env["crm.whatsapp.webhook.event"].search([("account_id", "in", accounts)])
            self.assertEqual(set(events.mapped("state")), {"done"})
            conversations = env["crm.whatsapp.conversation"].search([("account_id", "in", accounts)])
            self.assertEqual(len(conversations), 2, "one conversation per account")
            self.assertEqual(len(conversations.partner_id), 1, "one contact")
            self.assertEqual(env["res.partner"].search_count([("name", "=", "Rita Concurrent")]), 1)

        self._read(check)

    def test_same_delivery_twice_at_once_stored_once(self):
        message = self.inbound("text", {"body": "twice"}, wa_id=WA_ID_LONG)
        payload = self._payload(message, WA_ID_LONG)
        barrier, stored = threading.Barrier(2), []

        def store():
            stored.append(bool(self._store(payload, barrier=barrier)))

        self._in_threads((store,), (store,))
        self.assertEqual(sorted(stored), [False, True], "one stores it, the other sees a re-delivery")
        self.assertEqual(
            self._read(
                lambda env: env["crm.whatsapp.webhook.event"].search_count([("account_id", "=", self.account_id)])
            ),
            1,
        )

    def test_two_workers_never_process_the_same_event(self):
        """Two cron workers (or servers) on the same backlog share it: each event is taken by one."""
        wa_ids = [f"55119876500{n:02d}" for n in range(12)]
        event_ids = [
            self._store(self._payload(self.inbound("text", {"body": "hello"}, wa_id=w), w, name=f"Share {w}"))
            for w in wa_ids
        ]
        Event = self.registry["crm.whatsapp.webhook.event"]
        original, taken = Event._claim, {}

        def claim(events, lane, limit, exclude=()):
            claimed = original(events, lane, limit, exclude)
            taken.setdefault(threading.current_thread().name, []).extend(claimed.ids)
            time.sleep(0.1)  # hold the batch while the other worker claims
            return claimed

        barrier = threading.Barrier(2)
        with patch.object(Event, "_claim", claim), patch.object(event_module, "BATCH_SIZE", 2):
            self._in_threads((self._run, None, barrier), (self._run, None, barrier))
        self.assertEqual(len(taken), 2, "both workers took events")
        first, second = taken.values()
        self.assertFalse(set(first) & set(second), "never the same event")
        self.assertEqual(sorted(first + second), sorted(event_ids))

        def check(env):
            events = env["crm.whatsapp.webhook.event"].browse(event_ids)
            self.assertEqual(set(events.mapped("state")), {"done"})
            messages = env["crm.whatsapp.message"].search([("account_id", "=", self.account_id)])
            self.assertEqual(len(messages), len(wa_ids), "each message stored once")

        self._read(check)

    def test_event_left_by_a_killed_worker_is_taken_by_the_next_run(self):
        """A worker dies while it holds an event: the event is pending again, and the next run of its
        lane (every minute, sooner when woken) processes it; meanwhile nobody else takes it."""
        payload = self._payload(self.inbound("text", {"body": "survive"}, wa_id=WA_ID_LONG), WA_ID_LONG)
        event_id, lane = self._store(payload), lane_of(payload)
        cron = self._read(lambda env: env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{lane}").read()[0])
        self.assertEqual((cron["interval_number"], cron["interval_type"], cron["active"]), (1, "minutes", True))

        worker, env = self._cursor()
        claimed = env["crm.whatsapp.webhook.event"]._claim(lane, 50)
        self.assertEqual(claimed.ids, [event_id])
        worker.execute("SELECT pg_backend_pid()")
        pid = worker.fetchone()[0]
        self._run(lane)  # another worker meanwhile: the event is locked, skipped
        self.assertEqual(self._read(lambda env: env["crm.whatsapp.webhook.event"].browse(event_id).state), "pending")

        self._read(lambda env: env.cr.execute("SELECT pg_terminate_backend(%s)", [pid]))  # the worker is killed
        with contextlib.suppress(Exception):  # its connection is gone
            worker.close()
        self._run(lane)

        def check(env):
            self.assertEqual(env["crm.whatsapp.webhook.event"].browse(event_id).state, "done")
            self.assertEqual(env["crm.whatsapp.message"].search_count([("account_id", "=", self.account_id)]), 1)

        self._read(check)

    def test_shuffled_concurrent_replay_same_database(self):
        """Meta does not guarantee order: the same conversations delivered shuffled and processed by
        all lanes at once give the same messages and links as an in-order delivery."""
        script = []
        for n in range(4):
            wa_id = f"5511977700{n:03d}"
            ids = [f"wamid.REPLAY{n}x{i}" for i in range(6)]
            at = 1_700_000_000 + n * 100
            script += [
                (wa_id, self.inbound("text", {"body": f"first {n}"}, wa_id=wa_id, wamid=ids[0], timestamp=at)),
                (
                    wa_id,
                    self.inbound(
                        "text",
                        {"body": f"reply {n}"},
                        wa_id=wa_id,
                        wamid=ids[1],
                        timestamp=at + 1,
                        context={"id": ids[0]},
                    ),
                ),
                (
                    wa_id,
                    self.inbound(
                        "reaction", {"message_id": ids[0], "emoji": "👍"}, wa_id=wa_id, wamid=ids[2], timestamp=at + 2
                    ),
                ),
                (
                    wa_id,
                    self.inbound(
                        "edit",
                        {"original_message_id": ids[1], "message": {"type": "text", "text": {"body": f"fixed {n}"}}},
                        wa_id=wa_id,
                        wamid=ids[3],
                        timestamp=at + 3,
                    ),
                ),
                (wa_id, self.inbound("text", {"body": f"oops {n}"}, wa_id=wa_id, wamid=ids[4], timestamp=at + 4)),
                (
                    wa_id,
                    self.inbound(
                        "revoke", {"original_message_id": ids[4]}, wa_id=wa_id, wamid=ids[5], timestamp=at + 5
                    ),
                ),
            ]
        for wa_id, message in script:  # in order, one after the other
            self._store(self._payload(message, wa_id, name=f"Replay {wa_id}"))
            self._run()
        shuffled = script[:]
        random.Random(7).shuffle(shuffled)
        barrier = threading.Barrier(len(shuffled))
        self._in_threads(
            *[
                (self._store, self._payload(message, wa_id, True, name=f"Replay {wa_id}"), True, barrier)
                for wa_id, message in shuffled
            ]
        )
        self._all_lanes_at_once()

        def snapshot(env, account_id):
            messages = env["crm.whatsapp.message"].search([("account_id", "=", account_id)])
            return {
                m.wamid: (
                    m.message_type,
                    m.body,
                    m.reply_to_id.wamid,
                    m.reaction_to_id.wamid,
                    m.edited,
                    m.revoked,
                    m.conversation_id.wa_id,
                    m.partner_id.id,
                )
                for m in messages
            }

        in_order = self._read(lambda env: snapshot(env, self.account_id))
        replayed = self._read(lambda env: snapshot(env, self.second_account_id))
        self.assertEqual(len(in_order), len(script))
        self.assertEqual(replayed, in_order)
        self.assertEqual(in_order["wamid.REPLAY0x2"][3], "wamid.REPLAY0x0", "the reaction is linked")
        self.assertIn("(edited: fixed 0)", in_order["wamid.REPLAY0x1"][1])
        self.assertTrue(in_order["wamid.REPLAY0x4"][5], "the revoked message is marked")
