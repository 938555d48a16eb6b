"""The webhook event log as a manager reads it: titles, formatted payload, linked messages."""

from odoo.tests import tagged

from .webhook_common import CUSTOMER_NAME, CUSTOMER_WA_ID, WebhookCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookEventDisplay(WebhookCase):
    def _last_event(self):
        return self.env["crm.whatsapp.webhook.event"].search([], order="id desc", limit=1)

    def test_inbound_message_event(self):
        message = self.receive(self.inbound("text", {"body": "Olá, o sofá azul ainda existe?"}))
        event = self._last_event()
        self.assertEqual(event.display_name, f"Message from {CUSTOMER_NAME} (+{CUSTOMER_WA_ID})")
        self.assertNotIn("crm.whatsapp.webhook.event", event.display_name)
        self.assertIn('\n  "entry": [', event.payload_pretty, "indented")
        self.assertIn("Olá, o sofá azul", event.payload_pretty, "readable, not \\u-escaped")
        self.assertEqual(event.message_ids, message)
        action = event.action_open_messages()
        self.assertEqual(self.env[action["res_model"]].search(action["domain"]), message)

    def test_status_event_links_the_message(self):
        message = self.receive(self.inbound("text", {"body": "Hello"}))
        self.post(self.envelope({**self.messages_value([]), "statuses": [self.status(message.wamid, "read", 1)]}))
        event = self._last_event()
        self.assertEqual(event.display_name, f"Status read of a message to +{CUSTOMER_WA_ID}")
        self.assertEqual(event.message_ids, message)

    def test_process_again_only_where_it_makes_sense(self):
        Event = self.env["crm.whatsapp.webhook.event"]
        events = Event.create(
            [
                {"payload": "{}", "state": state, "account_id": self.account.id, "payload_hash": state}
                for state in ("pending", "done", "failed", "ignored")
            ]
        )
        self.assertEqual(events.mapped("can_process_again"), [False, False, True, False])
        orphan = Event.create({"payload": "{}", "state": "ignored", "payload_hash": "orphan"})
        self.assertTrue(orphan.can_process_again, "ignored for want of an account: it may exist now")
        self.assertEqual(orphan.display_name, f"WhatsApp delivery #{orphan.id}")
