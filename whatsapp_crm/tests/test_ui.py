from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from .common import WhatsappCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestUi(HttpCase, WhatsappCase):
    """In a browser, as a salesperson: read a customer's WhatsApp message and answer it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        body = "Do you have the sofa in blue?"
        cls.inbound = cls._create_customer_chat({"phone": "+32 470 12 34 56"}, body, post=True)
        cls.template = cls.env["crm.whatsapp.template"].create(
            {
                "name": "quote_ready",
                "account_id": cls.account.id,
                "status": "approved",
                "model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "body": "Hello {{1}}, your quote for {{2}} is ready.",
                "variable_ids": [
                    Command.create({"placeholder": "1", "field_path": "partner_id.name"}),
                    Command.create({"placeholder": "2", "field_path": "name"}),
                ],
            }
        )

    def test_reply_from_lead_form(self):
        with self.mock_whatsapp_api():
            self.start_tour(f"/odoo/crm/{self.lead.id}", "whatsapp_crm_tour", login=self.user_salesman.login)
        reply = "Yes we have it in navy blue"
        [payload] = self.sent_payloads()
        self.assertEqual(payload["to"], "+32470123456")
        self.assertEqual(payload["text"]["body"], reply)
        outbound = self.lead.whatsapp_message_ids.filtered(lambda m: m.direction == "outbound")
        self.assertRecordValues(
            outbound,
            [
                {
                    "state": "sent",
                    "message_type": "text",
                    "body": reply,
                    "conversation_id": self.conversation.id,
                    "partner_id": self.partner.id,
                    "author_id": self.user_salesman.id,
                }
            ],
        )
        self.assertTrue(outbound.wamid)
        self.assertEqual(outbound.mail_message_id.author_id, self.user_salesman.partner_id)

    def test_template_outside_window(self):
        self.conversation.last_inbound_at = fields.Datetime.now() - timedelta(days=2)
        with self.mock_whatsapp_api():
            self.start_tour(f"/odoo/crm/{self.lead.id}", "whatsapp_crm_template_tour", login=self.user_salesman.login)
        [payload] = self.sent_payloads()
        self.assertEqual(payload["type"], "template")
        self.assertEqual(
            payload["template"],
            {
                "name": "quote_ready",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ines Tour"},
                            {"type": "text", "text": "Sofas for the lobby"},
                        ],
                    }
                ],
            },
        )
        outbound = self.lead.whatsapp_message_ids.filtered(lambda m: m.direction == "outbound")
        self.assertRecordValues(
            outbound,
            [
                {
                    "state": "sent",
                    "message_type": "template",
                    "template_id": self.template.id,
                    "body": "Hello Ines Tour, your quote for Sofas for the lobby is ready.",
                    "author_id": self.user_salesman.id,
                }
            ],
        )

    def test_reply_from_my_conversations(self):
        with self.mock_whatsapp_api():
            self.start_tour("/odoo/crm", "whatsapp_crm_conversation_tour", login=self.user_salesman.login)
        [payload] = self.sent_payloads()
        self.assertEqual(payload["text"]["body"], "The blue sofa ships next week")
        outbound = self.conversation.message_ids_wa.filtered(lambda m: m.direction == "outbound")
        self.assertRecordValues(
            outbound, [{"state": "sent", "lead_id": self.lead.id, "author_id": self.user_salesman.id}]
        )
