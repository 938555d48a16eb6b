"""Exact query budgets of the webhook: the acknowledgement, and a known customer's message."""

from odoo.tests import tagged, warmup

from .common import encode_payload, sign
from .webhook_common import WEBHOOK_URL, WebhookCase

KNOWN_WA_ID = "5511987650099"
# The whole request: the accounts of the payload, the insert, the wake-up (the times come from
# the statements themselves, and the cron's id from a cache).
ACK_QUERIES = 3
# A known customer's text with an open lead followed by its salesperson, alone in its batch.
# The ingest: the batch's savepoint (2), event, accounts, one message lookup, conversation,
# message insert and update (its post and session, at the batch's flush), event update.
INGEST_QUERIES = 9
# Its post (no follower notification: the live push tells them, so no reply address either):
# Odoo's thread parent lookup, the default alias domain, the insert.
CHAT_POST_QUERIES = 3
# What the inbound hook's extensions and the inbox add: the message's words for the text search,
# the conversation's preview and unread count, the sessions (one read, one write), the messages
# report's counts (one insert per batch, whatever its size), the live push (one bus insert). The
# consent keywords are cached: no query.
HOOK_QUERIES = 6
# Odoo's own post, the follower notified by e-mail (our chat posts are pushed live instead)
MESSAGE_POST_QUERIES = 12


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookPerformance(WebhookCase):
    process_after_post = False

    def _payload(self, body, wa_id=KNOWN_WA_ID):
        return self.envelope(self.messages_value([self.inbound("text", {"body": body}, wa_id=wa_id)], wa_id=wa_id))

    def _deliver(self, body):
        payload = self._payload(body)
        event = self.env["crm.whatsapp.webhook.event"]._store(encode_payload(payload), payload, self.account)
        self.env.flush_all()
        return event

    @warmup
    def test_acknowledgement_query_budget(self):
        """Verify, store, commit, wake the lane, answer: the whole request, as Meta makes it."""
        raw = encode_payload(self._payload("ack"))
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw)}
        with self.assertQueryCount(__system__=ACK_QUERIES):
            response = self.url_open(WEBHOOK_URL, data=raw, headers=headers)
        self.assertEqual(response.status_code, 200)

    @warmup
    def test_known_customer_query_budget(self):
        self.account.user_ids = self.user_salesman
        self._deliver("first")._process()  # contact, conversation, lead
        self._deliver("warm-up")._process()
        event = self._deliver("third")
        with self.assertQueryCount(__system__=INGEST_QUERIES + CHAT_POST_QUERIES + HOOK_QUERIES):
            event._process()
        self.assertEqual(event.state, "done")
        lead = event.env["crm.whatsapp.conversation"].search([("wa_id", "=", KNOWN_WA_ID)]).lead_id
        self.assertIn(self.user_salesman.partner_id, lead.message_partner_ids, "followed by its salesperson")

    @warmup
    def test_plain_message_post_baseline(self):
        """What the same customer's plain message_post on the lead costs: the yardstick of the above."""
        self.account.user_ids = self.user_salesman
        self._deliver("first")._process()
        conversation = self.env["crm.whatsapp.conversation"].search([("wa_id", "=", KNOWN_WA_ID)])
        thread = conversation.lead_id.with_context(mail_create_nosubscribe=True, mail_notify_force_send=False)
        thread.message_post(
            author_id=conversation.partner_id.id,
            body="warm-up",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        with self.assertQueryCount(__system__=MESSAGE_POST_QUERIES):
            thread.message_post(
                author_id=conversation.partner_id.id,
                body="plain",
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
            )
