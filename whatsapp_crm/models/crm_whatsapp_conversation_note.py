"""Internal notes in the chat: the log notes and @mentions of a conversation's chatter, shown
among the bubbles, live like them, and never sent to the customer."""

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools import plaintext2html

NOTE_LIMIT = 200


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    def whatsapp_chat_log_note(self, body, partner_ids=None):
        """Log ``body`` as an internal note of the conversation (mentioning ``partner_ids``),
        through mail's log note: the customer is never sent anything. Returns the note to show."""
        self.ensure_one()
        self.check_access("write")
        body = (body or "").strip()
        if not body:
            raise UserError(_("Write a note first."))
        mentioned = self.env["res.partner"].browse(partner_ids or []).exists()
        note = self.message_post(
            body=plaintext2html(body),
            message_type="comment",
            subtype_xmlid="mail.mt_note",
            partner_ids=mentioned.ids,
        )
        return self._whatsapp_chat_note_values(note)

    def whatsapp_chat_mention_search(self, term, limit=8):
        """Users a note may mention (their partners), for the reply box's @ suggestions."""
        self.ensure_one()
        self.check_access("read")
        users = self.env["res.users"].search(
            [("share", "=", False), ("name", "ilike", term or "")], order="name", limit=limit
        )
        return [{"id": user.partner_id.id, "name": user.name} for user in users]

    def _message_post_after_hook(self, message, msg_values):
        result = super()._message_post_after_hook(message, msg_values)
        if self._whatsapp_is_note(message):
            self._whatsapp_live(conversations=self, notes=message)
        return result

    def _whatsapp_is_note(self, message):
        """A note a user logged (a mention included), not a system note nor a sent message."""
        return message.message_type == "comment" and message.subtype_id == self.env.ref("mail.mt_note")

    def _whatsapp_chat_notes(self, since=None, until=None, note_ids=None):
        """The internal notes of this conversation, oldest first, from ``since`` to before ``until``
        (or those of ``note_ids``), as the chat shows them."""
        self.ensure_one()
        domain = [
            ("model", "=", self._name),
            ("res_id", "=", self.id),
            ("message_type", "=", "comment"),
            ("subtype_id", "=", self.env.ref("mail.mt_note").id),
        ]
        if note_ids is not None:
            domain.append(("id", "in", list(note_ids)))
        if since:
            domain.append(("date", ">=", since))
        if until:
            domain.append(("date", "<", until))
        # sudo: the caller can read the conversation, and its notes are those of its chatter
        notes = self.env["mail.message"].sudo().search(domain, order="date desc, id desc", limit=NOTE_LIMIT)
        return self._whatsapp_chat_note_values(notes[::-1])

    def _whatsapp_chat_note_values(self, notes):
        return [
            {
                "id": note.id,
                "body": note.body or "",
                "author": note.author_id.name or "",
                "timestamp": fields.Datetime.to_string(note.date),
                "mentions": note.partner_ids.mapped("name"),
            }
            for note in notes
        ]
