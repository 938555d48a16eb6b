"""An account's customers, contacts and leads stay within its company; another company's records
never make a customer's message fail."""

from odoo.tests import tagged

from .webhook_common import CUSTOMER_WA_ID, WebhookCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboundMultiCompany(WebhookCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.account.company_id
        cls.other_company = cls.env["res.company"].create({"name": "Other Company"})
        cls.foreign_contact = cls.env["res.partner"].create(
            {"name": "Joana at Other Company", "mobile": f"+{CUSTOMER_WA_ID}", "company_id": cls.other_company.id}
        )

    def _assert_stored_with_lead(self, message):
        self.assertEqual(len(message), 1, "the message is stored")
        self.assertEqual(message.state, "received")
        lead = message.lead_id
        self.assertTrue(lead, "with a lead")
        self.assertEqual(lead.company_id, self.company, "in the account's company")
        self.assertFalse(self.env["crm.whatsapp.webhook.event"].search([("state", "=", "failed")]))
        return lead

    def test_contact_of_another_company(self):
        message = self.receive(self.inbound("text", {"body": "Olá"}))
        lead = self._assert_stored_with_lead(message)
        self.assertNotEqual(message.partner_id, self.foreign_contact, "matched within the account's company")
        self.assertIn(message.partner_id.company_id, (self.company, self.env["res.company"]))
        self.assertEqual(lead.partner_id, message.partner_id)
        self.assertEqual(lead.team_id, self.team)

    def test_shared_contact_is_matched(self):
        shared = self.env["res.partner"].create({"name": "Joana Shared", "mobile": f"+{CUSTOMER_WA_ID}"})
        message = self.receive(self.inbound("text", {"body": "Olá"}))
        self._assert_stored_with_lead(message)
        self.assertEqual(message.partner_id, shared)

    def test_team_of_another_company(self):
        self.team.company_id = self.other_company
        message = self.receive(self.inbound("text", {"body": "Olá"}))
        lead = self._assert_stored_with_lead(message)
        self.assertFalse(lead.team_id, "created without the foreign team")
        self.assertEqual(lead.partner_id, message.partner_id)

    def test_conversation_linked_to_a_foreign_contact(self):
        """A conversation whose contact is another company's (linked before): the lead is created
        without it, with the customer's name and number."""
        self.env["crm.whatsapp.conversation"].create(
            {"account_id": self.account.id, "wa_id": CUSTOMER_WA_ID, "partner_id": self.foreign_contact.id}
        )
        message = self.receive(self.inbound("text", {"body": "Olá"}))
        lead = self._assert_stored_with_lead(message)
        self.assertFalse(lead.partner_id)
        self.assertEqual(lead.mobile, f"+{CUSTOMER_WA_ID}")
        self.assertTrue(lead.contact_name)
