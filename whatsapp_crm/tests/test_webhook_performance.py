"""Query budget of the webhook's hot path: a message from a known customer."""

from odoo.tests import tagged

from .common import WhatsappCase, encode_payload
from .webhook_common import WebhookPayloads


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookPerformance(WhatsappCase, WebhookPayloads):
    def _deliver(self, body):
        payload = self.envelope(self.messages_value([self.inbound("text", {"body": body})]))
        event = self.env["crm.whatsapp.webhook.event"]._store(encode_payload(payload), payload, self.account)
        self.env.flush_all()
        return event

    def test_known_customer_query_budget(self):
        self.account.user_ids = self.user_salesman
        self._deliver("first")._process()  # contact, conversation, lead
        self._deliver("warm-up")._process()
        event = self._deliver("third")
        # the inbox upkeep (preview, unread count, waiting since) and the session facts write the conversation
        with self.assertQueryCount(__system__=33):
            event._process()
            self.env.flush_all()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.env["crm.whatsapp.message"].search_count([("account_id", "=", self.account.id)]), 3)
