from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from .common import WhatsappCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestUiConsent(HttpCase, WhatsappCase):
    """In a browser, as a salesperson: record an opt-in with its proof, then send a marketing template."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "Ines Tour", "mobile": "+32 470 12 34 56"})
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470123456",
                "partner_id": cls.partner.id,
                "user_id": cls.user_salesman.id,
                "last_inbound_at": fields.Datetime.now() - timedelta(days=3),
            }
        )
        cls.template = cls.env["crm.whatsapp.template"].create(
            {
                "name": "spring_promo",
                "account_id": cls.account.id,
                "status": "approved",
                "category": "marketing",
                "model_id": cls.env["ir.model"]._get_id("res.partner"),
                "body": "Hello {{1}}, our spring collection is here.",
                "variable_ids": [Command.create({"placeholder": "1", "field_path": "name"})],
            }
        )

    def test_record_opt_in_then_send_marketing(self):
        with self.mock_whatsapp_api():
            self.start_tour(
                f"/odoo/contacts/{self.partner.id}", "whatsapp_crm_consent_tour", login=self.user_salesman.login
            )
        [payload] = self.sent_payloads()
        self.assertEqual(payload["template"]["name"], "spring_promo")
        consent = self.partner.whatsapp_consent_ids
        self.assertRecordValues(
            consent, [{"scope": "marketing", "state": "opt_in", "source": "manual", "number": "+32470123456"}]
        )
        self.assertEqual(consent.history_ids.user_id, self.user_salesman)
        self.assertIn("newsletter form", consent.history_ids.proof)
