"""Exact query budgets of what reporting adds to each message: session facts and message counts."""

from odoo import fields
from odoo.tests import tagged, warmup

from .reporting_common import ReportingCase

ANNA, BORIS = "385911000001", "385911000002"
# The inbound hook's reporting part (crm.whatsapp.conversation._whatsapp_report_inbound) for a
# customer message in an open session: survey answers looked for (1), the open session found (1)
# and read (1), the message counted (1 insert), the session's counts (1), the message's session (1).
INBOUND_QUERIES = 6
# The same for four messages of two customers: the same queries, each one for the whole batch.
INBOUND_BATCH_QUERIES = INBOUND_QUERIES
# A reply accepted by WhatsApp, in its session (crm.whatsapp.session._register_outbound, called by
# the message's write when it becomes sent): the open session found (1), its counts, first
# response and waiting time (1), the message's session (1). Counting the message as sent instead
# of queued is one more insert in the same write (see the status below).
SENT_QUERIES = 3
# A delivery status: reporting's part is the message counted as delivered instead of sent (1
# insert). Beside it: the message found (1) and written (1), the chatter notification (2 reads, 1
# write), and at commit the live push (4).
STATUS_QUERIES = 10


@tagged("post_install", "-at_install")
class TestReportingPerformance(ReportingCase):
    def receive(self, when, text, wa_id):
        """A customer message stored as the ingest stores it, before the inbound hook."""
        conversation = self.conversation(wa_id)
        return (
            self.env["crm.whatsapp.message"]
            .sudo()
            .create(
                {
                    "account_id": self.account.id,
                    "conversation_id": conversation.id,
                    "partner_id": conversation.partner_id.id,
                    "direction": "inbound",
                    "state": "received",
                    "message_type": "text",
                    "body": text,
                    "timestamp": self.at(when),
                }
            )
        )

    def report_inbound(self, messages):
        self.env["crm.whatsapp.conversation"].sudo()._whatsapp_report_inbound(messages)
        self.env.flush_all()

    @warmup
    def test_inbound_query_budget(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)  # the session opens
        self.report_inbound(self.receive("2026-01-12 09:01", "warm-up", ANNA))
        message = self.receive("2026-01-12 09:02", "Are you there?", ANNA)
        self.env.flush_all()
        with self.assertQueryCount(__system__=INBOUND_QUERIES):
            self.report_inbound(message)
        self.assertEqual(message.session_id.inbound_count, 3)

    @warmup
    def test_inbound_batch_query_budget(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=BORIS)
        self.report_inbound(
            self.receive("2026-01-12 09:01", "warm-up", ANNA) | self.receive("2026-01-12 09:01", "", BORIS)
        )
        messages = self.env["crm.whatsapp.message"]
        for minute, wa_id in ((2, ANNA), (3, BORIS), (4, ANNA), (5, BORIS)):
            messages |= self.receive(f"2026-01-12 09:0{minute}", "More", wa_id)
        self.env.flush_all()
        with self.assertQueryCount(__system__=INBOUND_BATCH_QUERIES):
            self.report_inbound(messages)
        self.assertEqual(messages.session_id.mapped("inbound_count"), [4, 4])

    @warmup
    def test_sent_query_budget(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        self.agent_replies("2026-01-12 09:01", "warm-up", conversation=self.conversation(ANNA))
        self.customer_says("2026-01-12 09:02", "And?", wa_id=ANNA)
        message = (
            self.conversation(ANNA).with_user(self.user_salesman)._message_whatsapp(body="Here", send_now=False).sudo()
        )
        self.env.flush_all()
        with self.assertQueryCount(__system__=SENT_QUERIES):
            self.env["crm.whatsapp.session"].sudo()._register_outbound(message)
            self.env.flush_all()
        self.assertEqual(message.session_id.outbound_count, 2)
        self.assertFalse(message.session_id.waiting_since)

    @warmup
    def test_status_query_budget(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        warm = self.agent_replies("2026-01-12 09:01", "warm-up", conversation=self.conversation(ANNA))
        reply = self.agent_replies("2026-01-12 09:02", "Here", conversation=self.conversation(ANNA))
        Message = self.env["crm.whatsapp.message"].sudo()
        status = {"status": "delivered", "timestamp": str(int(fields.Datetime.now().timestamp()))}
        Message._whatsapp_apply_statuses(self.account, [{**status, "id": warm.wamid}])
        self.env.flush_all()
        with self.assertQueryCount(__system__=STATUS_QUERIES):
            Message._whatsapp_apply_statuses(self.account, [{**status, "id": reply.wamid}])
            self.env.flush_all()
        self.assertEqual(reply.state, "delivered")
