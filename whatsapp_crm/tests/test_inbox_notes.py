"""Internal notes in the chat: logged through mail's log note, shown among the bubbles, live,
and never sent to the customer."""

import json

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import WhatsappCase, new_wamid


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxNotes(WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "Noor Notes", "mobile": "+32 470 55 66 88"})
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470556688",
                "partner_id": cls.partner.id,
                "user_id": cls.user_salesman.id,
                "team_id": cls.team.id,
                "last_inbound_at": fields.Datetime.now(),
            }
        )
        # the customer follows the conversation: a note must still never reach them
        cls.conversation.message_subscribe(partner_ids=cls.partner.ids)
        cls.env["crm.whatsapp.message"].create(
            {
                "account_id": cls.account.id,
                "conversation_id": cls.conversation.id,
                "partner_id": cls.partner.id,
                "direction": "inbound",
                "state": "received",
                "wamid": new_wamid(),
                "body": "Can I have a discount?",
                "timestamp": fields.Datetime.now(),
            }
        )

    def bus_payloads(self, user):
        self.env.cr.precommit.run()
        channel = json.dumps([self.env.cr.dbname, "res.partner", user.partner_id.id], separators=(",", ":"))
        return [
            json.loads(n.message)["payload"]
            for n in self.env["bus.bus"].sudo().search([("channel", "=", channel)])
            if json.loads(n.message)["type"] == "whatsapp_crm/update"
        ]

    def test_note_is_never_sent_and_shows_in_the_chat(self):
        Conversation = self.conversation.with_user(self.user_salesman)
        colleague = self.user_salesman_2.partner_id
        [mention] = Conversation.whatsapp_chat_mention_search("Bob")
        self.assertEqual(mention, {"id": colleague.id, "name": "Bob Other Sales"})
        with self.mock_whatsapp_api() as requests:
            [note] = Conversation.whatsapp_chat_log_note("Ask @Bob Other Sales about 10 %", partner_ids=[colleague.id])
        self.assertFalse(requests, "a note never calls WhatsApp")
        self.assertNoWhatsAppSent()
        self.assertEqual(len(self.conversation.message_ids_wa), 1, "no WhatsApp message was made of the note")
        logged = self.env["mail.message"].browse(note["id"])
        self.assertEqual(logged.subtype_id, self.env.ref("mail.mt_note"))
        self.assertEqual(logged.message_type, "comment")
        self.assertEqual(logged.author_id, self.user_salesman.partner_id)
        self.assertEqual(logged.notification_ids.res_partner_id, colleague, "the mention is told, only them")
        self.assertEqual(note["mentions"], ["Bob Other Sales"])
        chat = Conversation.whatsapp_chat_load(mark_read=False)
        self.assertEqual([n["id"] for n in chat["notes"]], [logged.id])
        self.assertIn("Ask @Bob Other Sales about 10 %", chat["notes"][0]["body"])
        self.assertEqual(chat["notes"][0]["author"], "Sally Sales")
        self.assertEqual([m["body"] for m in chat["messages"]], ["Can I have a discount?"], "a note is no bubble")
        with self.assertRaises(UserError):
            Conversation.whatsapp_chat_log_note("  ")

    def test_chatter_notes_only_and_live(self):
        """A note logged from the chatter shows too; the system's notes and sent messages do not;
        the assignee is told live."""
        self.env.cr.precommit.run()
        self.env["bus.bus"].sudo().search([]).unlink()
        manager_note = self.conversation.with_user(self.user_manager).message_post(
            body="Offer the blue one", message_type="comment", subtype_xmlid="mail.mt_note"
        )
        self.conversation.message_post(body="Assigned to Sally Sales.", subtype_xmlid="mail.mt_note")
        self.conversation.with_user(self.user_manager).message_post(
            body="Sent by e-mail", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        [payload] = self.bus_payloads(self.user_salesman)
        self.assertEqual(payload["note_ids"], [manager_note.id])
        self.assertEqual(payload["conversation_ids"], [self.conversation.id])
        Conversation = self.conversation.with_user(self.user_salesman)
        update = Conversation.whatsapp_chat_messages([], note_ids=payload["note_ids"])
        self.assertEqual([n["id"] for n in update["notes"]], [manager_note.id])
        chat = Conversation.whatsapp_chat_load(mark_read=False)
        self.assertEqual([n["body"] for n in chat["notes"]], ["<p>Offer the blue one</p>"])
        self.assertFalse(self.bus_payloads(self.user_salesman_2), "another salesperson is not told")
