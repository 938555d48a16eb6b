"""Concurrent first messages from one number, on real committed transactions."""

import threading

from odoo import SUPERUSER_ID, api
from odoo.api import Transaction
from odoo.tests import TransactionCase, tagged

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
    """Each worker has its own cursor and commits, as two webhook requests would; cleaned afterwards."""

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

    def _deliver(self, wa_id, barrier, states, second=False):
        message = self.inbound("text", {"body": f"hello from {wa_id}"}, wa_id=wa_id)
        phone_number_id, waba_id = (PHONE_NUMBER_ID_2, WABA_ID_2) if second else (PHONE_NUMBER_ID, WABA_ID)
        value = self.messages_value([message], wa_id=wa_id, name="Rita Concurrent", phone_number_id=phone_number_id)
        payload = self.envelope(value, waba_id=waba_id)
        with self.registry.cursor() as cr:
            # the main thread holds the registry lock while tests run: give the env its registry directly
            cr.transaction = Transaction(self.registry)
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["crm.whatsapp.account"].browse(self.second_account_id if second else self.account_id)
            event = env["crm.whatsapp.webhook.event"]._store(encode_payload(payload), payload, account)
            # stored and committed, as the controller does
            cr.commit()  # pylint: disable=invalid-commit
            barrier.wait(timeout=30)
            event._process()
            cr.commit()  # pylint: disable=invalid-commit
            states.append(event.state)

    def test_concurrent_first_messages_one_contact_conversation_lead(self):
        wa_ids = [WA_ID_LONG, WA_ID_SHORT, WA_ID_LONG, WA_ID_SHORT]
        barrier, states = threading.Barrier(len(wa_ids)), []
        threads = [threading.Thread(target=self._deliver, args=(wa_id, barrier, states)) for wa_id in wa_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(states, ["done"] * len(wa_ids))
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            conversations = env["crm.whatsapp.conversation"].search([("account_id", "=", self.account_id)])
            self.assertEqual(len(conversations), 1, "one conversation for one number")
            messages = env["crm.whatsapp.message"].search([("account_id", "=", self.account_id)])
            self.assertEqual(len(messages), len(wa_ids))
            self.assertEqual(messages.conversation_id, conversations)
            self.assertEqual(len(messages.partner_id), 1, "one contact")
            self.assertEqual(env["res.partner"].search_count([("name", "=", "Rita Concurrent")]), 1)
            leads = env["crm.lead"].search([("team_id", "=", self.team_id)])
            self.assertEqual(len(leads), 1, "one lead")
            self.assertEqual(messages.lead_id, leads)

    def test_concurrent_first_messages_to_two_of_our_numbers_one_contact(self):
        """The same customer writes to two of our numbers at once: two conversations, one contact."""
        runs = [(WA_ID_LONG, False), (WA_ID_SHORT, True), (WA_ID_SHORT, False), (WA_ID_LONG, True)] * 2
        barrier, states = threading.Barrier(len(runs)), []
        threads = [
            threading.Thread(target=self._deliver, args=(wa_id, barrier, states, second)) for wa_id, second in runs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(states, ["done"] * len(runs))
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            accounts = [self.account_id, self.second_account_id]
            conversations = env["crm.whatsapp.conversation"].search([("account_id", "in", accounts)])
            self.assertEqual(len(conversations), 2, "one conversation per account")
            self.assertEqual(len(conversations.partner_id), 1, "one contact")
            self.assertEqual(env["res.partner"].search_count([("name", "=", "Rita Concurrent")]), 1)

    def _store_at_once(self, raw, payload, barrier, stored):
        with self.registry.cursor() as cr:
            cr.transaction = Transaction(self.registry)
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["crm.whatsapp.account"].browse(self.account_id)
            Event = env["crm.whatsapp.webhook.event"]
            Event.search_count([])  # both transactions started before either stores
            barrier.wait(timeout=30)
            stored.append(len(Event._store(raw, payload, account)))
            cr.commit()  # pylint: disable=invalid-commit

    def test_same_delivery_twice_at_once_stored_once(self):
        message = self.inbound("text", {"body": "twice"}, wa_id=WA_ID_LONG)
        payload = self.envelope(self.messages_value([message], phone_number_id=PHONE_NUMBER_ID), waba_id=WABA_ID)
        raw = encode_payload(payload)
        barrier, stored = threading.Barrier(2), []
        threads = [threading.Thread(target=self._store_at_once, args=(raw, payload, barrier, stored)) for _i in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(sorted(stored), [0, 1], "one stores it, the other sees a re-delivery")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Event = env["crm.whatsapp.webhook.event"]
            self.assertEqual(Event.search_count([("account_id", "=", self.account_id)]), 1)
