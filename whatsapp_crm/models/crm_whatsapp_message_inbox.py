"""What a message changes in the inbox and on the screens: the conversation's preview and
counters, the first business reply, live pushes, and read receipts sent to WhatsApp."""

import logging
from collections import defaultdict

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.whatsapp_cloud_api import WhatsAppApiError
from .crm_whatsapp_conversation_inbox import WORDLESS_TYPES, WORDS_TABLE

_logger = logging.getLogger(__name__)

PREVIEW_ICONS = {
    "image": "📷",
    "video": "🎥",
    "audio": "🎤",
    "document": "📄",
    "sticker": "💟",
    "location": "📍",
    "contacts": "👤",
}
READ_RECEIPT_BATCH = 200
# a conversation's words stop growing there: a tsvector holds 1 MB at most
MAX_WORDS = 40000


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    # the inbox searches words of the messages; the chat gathers the reactions of its bubbles
    body = fields.Text(index="trigram")
    reaction_to_id = fields.Many2one(index="btree_not_null")
    read_receipt = fields.Selection(
        [("pending", "To Send"), ("sent", "Sent")],
        readonly=True,
        index="btree_not_null",
        help="Read receipt of a customer's message: the blue ticks on their phone.",
    )

    def init(self):
        super().init()
        # a chat opens on its latest messages, whatever the age of the conversation
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS crm_whatsapp_message_chat_index"
            " ON crm_whatsapp_message (conversation_id, timestamp DESC, id DESC)"
        )

    @api.model_create_multi
    def create(self, vals_list):
        messages = super().create(vals_list)
        conversations = messages.conversation_id
        conversations._whatsapp_inbox_register(messages)
        messages._whatsapp_index_words()
        for message in messages:
            conversation, author = message.conversation_id, message.author_id
            if (
                message.direction == "outbound"
                and conversation
                and not conversation.user_id
                and author
                and author._is_internal()
                and not author._is_superuser()
            ):
                # the first business reply takes the conversation
                conversation.sudo()._whatsapp_assign(author)
        Conversation = self.env["crm.whatsapp.conversation"]
        Conversation._whatsapp_live(messages=messages)
        for message in messages.filtered(lambda m: m.direction == "inbound" and m.message_type not in ("system",)):
            if message.conversation_id.user_id:
                Conversation._whatsapp_live(notify=[(message.conversation_id.user_id, message)])
        return messages

    def unlink(self):
        self.env["crm.whatsapp.conversation"]._whatsapp_live_unlinked()
        return super().unlink()

    def write(self, vals):
        result = super().write(vals)
        if vals.get("body"):
            self._whatsapp_index_words()
        if {"state", "body", "attachment_ids", "revoked", "media_state"} & vals.keys():
            self.env["crm.whatsapp.conversation"]._whatsapp_live(messages=self)
        return result

    def _whatsapp_index_words(self):
        """Add the words of these messages to their conversations' words (the text search), in
        one query. Words are only added: a word once written stays findable."""
        bodies = defaultdict(list)
        for message in self:
            if message.conversation_id and message.body and message.message_type not in WORDLESS_TYPES:
                bodies[message.conversation_id.id].append(message.body)
        if not bodies:
            return
        unaccent = self.env.registry.unaccent_python
        rows = SQL(", ").join(
            SQL("(%s, %s)", conversation_id, unaccent(" ".join(texts)).lower())
            for conversation_id, texts in bodies.items()
        )
        self.env.cr.execute(
            SQL(
                """INSERT INTO %(table)s AS old (conversation_id, words)
                   SELECT id, strip(to_tsvector('simple', body)) FROM (VALUES %(rows)s) AS new (id, body)
              ON CONFLICT (conversation_id) DO UPDATE SET words = old.words || EXCLUDED.words
                    WHERE length(old.words) < %(max)s""",
                table=SQL.identifier(WORDS_TABLE),
                rows=rows,
                max=MAX_WORDS,
            )
        )

    def _whatsapp_preview(self):
        """One line telling what this message is, for the inbox list and notifications."""
        self.ensure_one()
        kind = self.message_type
        if kind == "reaction":
            return _("Reacted %s", self.body or "")
        text = (self.body or "").strip().splitlines()
        text = text[0] if text else ""
        if kind in PREVIEW_ICONS:
            label = (
                self.media_filename
                if kind == "document"
                else dict(self._fields["message_type"]._description_selection(self.env)).get(kind)
            )
            return f"{PREVIEW_ICONS[kind]} {text or label or ''}".strip()
        if kind == "template" and self.template_id and not text:
            return self.template_id.display_name
        return text

    # ------------------------------------------------------------
    # Read receipts
    # ------------------------------------------------------------

    def _whatsapp_mark_read(self):
        """Opened by a user: tell WhatsApp once (the blue ticks), outside of this request."""
        to_mark = self.filtered(lambda m: m.direction == "inbound" and m.wamid and not m.read_receipt)
        if not to_mark:
            return
        # WhatsApp marks every earlier message of the chat read with the latest one
        latest = {}
        for message in to_mark:
            key = message.conversation_id
            if key not in latest or (message.timestamp, message.id) > (latest[key].timestamp, latest[key].id):
                latest[key] = message
        pending = self.browse([m.id for m in latest.values()])
        # sudo: the receipt is the system's record of what WhatsApp was told
        (to_mark - pending).sudo().write({"read_receipt": "sent"})
        pending.sudo().write({"read_receipt": "pending"})
        self.env.ref("whatsapp_crm.ir_cron_whatsapp_read_receipts").sudo()._trigger()

    @api.model
    def _cron_send_read_receipts(self):
        """Send the pending read receipts, one request per conversation."""
        messages = self.search([("read_receipt", "=", "pending")], order="id", limit=READ_RECEIPT_BATCH)
        for account, account_messages in messages.grouped("account_id").items():
            try:
                api_client = account._get_api()
            except UserError as error:  # an account without token must not stop the others
                _logger.info("WhatsApp read receipts of %s not sent: %s", account.name, error)
                continue
            with api_client:
                for message in account_messages:
                    try:
                        api_client.mark_as_read(message.wamid)
                    except WhatsAppApiError as error:
                        _logger.info("WhatsApp read receipt of message %s refused: %s", message.id, error)
            account_messages.write({"read_receipt": "sent"})
        if len(messages) == READ_RECEIPT_BATCH:
            self.env.ref("whatsapp_crm.ir_cron_whatsapp_read_receipts")._trigger()

    def _whatsapp_live_notification(self):
        self.ensure_one()
        return {
            "conversation_id": self.conversation_id.id,
            "title": _("WhatsApp: %s", self.conversation_id.partner_id.name or self.conversation_id.display_name),
            "message": self._whatsapp_preview(),
        }

    # ------------------------------------------------------------
    # The chat component's view of messages
    # ------------------------------------------------------------

    def _whatsapp_chat_values(self):
        """Bubbles: what the chat component shows of each message, in one batch."""
        reactions = {}
        if self.ids:
            for reaction in self.search(
                [("reaction_to_id", "in", self.ids), ("message_type", "=", "reaction")], order="timestamp, id"
            ):
                # the latest reaction of each side counts; an empty one removes it
                reactions.setdefault(reaction.reaction_to_id.id, {})[reaction.direction] = reaction.body or ""
        # the payload only of messages whose content lives there, not of every bubble
        structured = self.filtered(
            lambda m: m.message_type in ("location", "contacts", "interactive", "button", "order")
        )
        payloads = {m.id: m.payload or {} for m in structured.with_prefetch(structured.ids)}
        state_labels = dict(self._fields["state"]._description_selection(self.env))
        values = []
        for message in self:
            item = {
                "id": message.id,
                "direction": message.direction,
                "type": message.message_type,
                "body": message.body or "",
                "timestamp": fields.Datetime.to_string(message.timestamp),
                "state": message.state,
                "state_label": state_labels.get(message.state, ""),
                "author": message.author_id.name or "" if message.direction == "outbound" else "",
                "error": message.error_message or "" if message.state in ("failed", "refused") else "",
                "template": message.template_id.display_name or "",
                "forwarded": message.forwarded,
                "revoked": message.revoked,
                "edited": message.edited,
                "media_state": message.media_state,
                "attachments": [
                    {"id": a.id, "name": a.name, "mimetype": a.mimetype or ""} for a in message.attachment_ids
                ],
                "reply_to": message.reply_to_id
                and {
                    "id": message.reply_to_id.id,
                    "direction": message.reply_to_id.direction,
                    "preview": message.reply_to_id._whatsapp_preview(),
                },
                "reactions": [
                    {"emoji": emoji, "direction": direction}
                    for direction, emoji in sorted(reactions.get(message.id, {}).items())
                    if emoji
                ],
                "buttons": [button.get("title") for button in message.buttons or [] if isinstance(button, dict)],
            }
            payload = payloads.get(message.id)
            if payload and message.message_type == "location":
                location = payload.get("location") or {}
                item["location"] = {
                    "name": location.get("name") or location.get("address") or "",
                    "address": location.get("address") or "",
                    "url": "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}".format(
                        lat=location.get("latitude"), lon=location.get("longitude")
                    ),
                }
            elif payload and message.message_type == "contacts":
                item["contacts"] = [
                    {
                        "name": (contact.get("name") or {}).get("formatted_name") or "",
                        "phones": [p.get("phone") for p in contact.get("phones") or [] if p.get("phone")],
                        "emails": [e.get("email") for e in contact.get("emails") or [] if e.get("email")],
                    }
                    for contact in payload.get("contacts") or []
                    if isinstance(contact, dict)
                ]
            values.append(item)
        return values
