"""Who hears of a customer's WhatsApp message: colleagues inside Odoo, nobody by e-mail."""

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

    def test_followers_notified_in_odoo_not_by_email(self):
        lead = self.receive(self.inbound("text", {"body": "hello"})).lead_id
        outsider = self.env["res.partner"].create({"name": "Outside Partner", "email": "out@example.com"})
        lead.message_subscribe(partner_ids=(self.user_salesman_2.partner_id | outsider).ids)
        before = self._mails()
        message = self.receive(self.inbound("text", {"body": "Is the blue one in stock?"}))
        notifications = message.mail_message_id.notification_ids
        self.assertEqual(
            {(n.res_partner_id, n.notification_type) for n in notifications},
            {(self.user_salesman.partner_id, "inbox"), (self.user_salesman_2.partner_id, "inbox")},
            "both salespeople in their Odoo inbox; the outsider gets no copy of the customer's chat",
        )
        self.assertEqual(self._mails() - before, self._mails().browse(), "no e-mail at all")

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
