"""Who hears of a customer's WhatsApp message: colleagues inside Odoo, nobody by e-mail."""

import json

from odoo.tests import tagged

from .webhook_common import WebhookCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookNotifications(WebhookCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.user_salesman | cls.user_salesman_2).notification_type = "email"

    def _mails(self):
        return self.env["mail.mail"].sudo().search([])

    def test_new_lead_assigned_without_email(self):
        """The lead and chat a first message creates are assigned to the salesperson, who is told
        by the live push and the inbox, not by Odoo's "you have been assigned" e-mail."""
        before = self._mails()
        message = self.receive(self.inbound("text", {"body": "Do you deliver?"}))
        self.assertEqual(message.lead_id.user_id, self.user_salesman)
        self.assertEqual(self._mails() - before, self._mails().browse(), "no e-mail at all")

    def test_followers_told_live_not_by_email(self):
        """Followers see the customer's message through the live push, as the chat and chatter
        update; Odoo does not e-mail it nor notify it again, and nobody outside gets a copy."""
        lead = self.receive(self.inbound("text", {"body": "hello"})).lead_id
        outsider = self.env["res.partner"].create({"name": "Outside Partner", "email": "out@example.com"})
        lead.message_subscribe(partner_ids=(self.user_salesman_2.partner_id | outsider).ids)
        before = self._mails()
        self.env["bus.bus"].sudo().search([]).unlink()
        message = self.receive(self.inbound("text", {"body": "Is the blue one in stock?"}))
        self.assertFalse(message.mail_message_id.notification_ids)
        self.assertEqual(self._mails() - before, self._mails().browse(), "no e-mail at all")
        self.env.cr.precommit.run()  # the live push is sent when the transaction commits
        pushed = set(self.env["bus.bus"].sudo().search([]).mapped("channel"))
        for partner in (self.user_salesman.partner_id, self.user_salesman_2.partner_id, outsider):
            channel = json.dumps([self.env.cr.dbname, "res.partner", partner.id], separators=(",", ":"))
            self.assertEqual(channel in pushed, partner != outsider, partner.name)

    def test_other_messages_keep_email_preferences(self):
        """Only WhatsApp chat posts are kept out of mailboxes: a note on the same lead is not."""
        lead = self.receive(self.inbound("text", {"body": "hello"})).lead_id
        lead.message_subscribe(partner_ids=self.user_salesman_2.partner_id.ids)
        note = lead.with_user(self.user_salesman).message_post(
            body="Call them back", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        self.assertEqual(
            note.notification_ids.filtered(lambda n: n.notification_type == "email").res_partner_id,
            self.user_salesman_2.partner_id,
        )
