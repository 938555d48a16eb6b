"""Inbound side of WhatsApp messages: what the webhook's ``messages`` and ``calls`` changes store."""

import logging

import psycopg2

from odoo import _, api, fields, models
from odoo.tools import plaintext2html

from ..tools import webhook_payload as wp
from .crm_whatsapp_message import MEDIA_TYPES

_logger = logging.getLogger(__name__)


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    def init(self):
        super().init()
        cr = self.env.cr
        # reactions, edits and replies waiting for their message (_link_earlier_replies): only those
        cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_whatsapp_message_waiting_reply_index
               ON crm_whatsapp_message (account_id, reply_to_wamid)
               WHERE reply_to_wamid IS NOT NULL AND reply_to_id IS NULL AND reaction_to_id IS NULL"""
        )
        # wamid_account_unique (account_id, wamid) serves every lookup by wamid
        cr.execute("DROP INDEX IF EXISTS crm_whatsapp_message__wamid_index")
        # searching message text (index="trigram") needs pg_trgm; Odoo only uses it if installed
        if not self.pool.has_trigram:
            try:
                with cr.savepoint(flush=False):
                    cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except psycopg2.Error:
                _logger.warning("pg_trgm is not available: WhatsApp message text is searched without index")
                return
            self.pool.has_trigram = True
        cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_whatsapp_message__body_index
               ON crm_whatsapp_message USING gin (body gin_trgm_ops)"""
        )

    # ------------------------------------------------------------
    # field = messages (``_whatsapp_webhook_<field>(account, value)``, see crm.whatsapp.webhook.event)
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_webhook_messages(self, account, value):
        """Store the customer messages and apply the statuses of a ``messages`` change.

        :return: ``(notes, wait, received)``: what was not applied, whether a status waits for its
            message, and the inbound messages stored
        """
        notes, received = [], self.browse()
        contacts = value.get("contacts") or []
        for message in value.get("messages") or []:
            wa_id, user_id, _name, _username = wp.sender(message, contacts)
            if not (wa_id or user_id):
                # nobody to file it under: retrying would fail the same way
                notes.append(_("Message %s ignored: no sender.", message.get("id")))
                continue
            received |= self._whatsapp_receive(account, message, contacts)
        status_notes, wait = self._whatsapp_apply_statuses(account, value.get("statuses") or [])
        for error in value.get("errors") or []:
            account.message_post(body=_("WhatsApp reported an error: %s", wp.errors_text([error])))
        return notes + status_notes, wait, received

    @api.model
    def _whatsapp_receive(self, account, message, contacts):
        """Store one customer message (once per wamid) with its conversation, contact, lead and chatter post."""
        wamid = wp.check_id(message.get("id"), "message id")
        wp.check_shape(message)
        wa_id, user_id, profile_name, _username = wp.sender(message, contacts)
        wa_id = wp.check_wa_id(wa_id) if wa_id else None
        user_id = wp.check_id(user_id, "user id") if user_id else None
        kind = message.get("type") or "unsupported"
        if kind not in dict(self._fields["message_type"].selection):
            kind = "unsupported"
        # reactions, edits and revokes name their original message; replies quote one
        context = message.get("context") or {}
        original_wamid = wp.original_wamid(message)
        reply_wamid = context.get("id") or (original_wamid if kind in ("edit", "revoke", "reaction") else None)
        if reply_wamid:
            wp.check_id(reply_wamid, "quoted message id")
        # one query: this message if stored already, the messages it names, those waiting for it
        known = self.search(self._receive_lookup_domain(account, wamid, {original_wamid, reply_wamid} - {None}))
        if any(m.wamid == wamid for m in known):
            return self.browse()
        related = {m.wamid: m for m in known}
        content = message.get(kind) if isinstance(message.get(kind), dict) else {}
        when = wp.to_datetime(message.get("timestamp")) or fields.Datetime.now()

        Conversation = self.env["crm.whatsapp.conversation"]
        conversation = Conversation._find(account, wa_id, user_id)
        is_new = not conversation or conversation._whatsapp_reopening()
        if conversation:
            conversation._update_identity(wa_id, user_id, profile_name)
        else:
            conversation = Conversation._find_or_create(account, wa_id, user_id, profile_name)
        if kind != "system":
            conversation._register_inbound(when)
        referral = message.get("referral")
        lead = conversation._ensure_lead(is_new, referral)
        if referral and lead and not lead.whatsapp_ctwa_clid and referral.get("ctwa_clid"):
            lead.whatsapp_ctwa_clid = referral["ctwa_clid"]

        original = related.get(original_wamid, self.browse())
        values = {
            "account_id": account.id,
            "conversation_id": conversation.id,
            "partner_id": conversation.partner_id.id,
            "lead_id": lead.id,
            "direction": "inbound",
            "state": "received",
            "wamid": wamid,
            "message_type": kind,
            "body": wp.message_body(message, self.env.lang or "en_US"),
            "timestamp": when,
            "reply_to_wamid": reply_wamid or False,
            "reply_to_id": related.get(reply_wamid, self.browse()).id if kind != "reaction" else False,
            "reaction_to_id": original.id if kind == "reaction" else False,
            "forwarded": bool(context.get("forwarded") or context.get("frequently_forwarded")),
            "referral_data": referral or False,
            "payload": message,
        }
        values.update(self._media_values(kind, content))
        if message.get("errors"):
            first = message["errors"][0] if isinstance(message["errors"][0], dict) else {}
            values.update(error_code=wp.int_code(first.get("code")), error_message=wp.errors_text(message["errors"]))
        record = self.create(values)
        if kind == "system" and content.get("type") == "user_changed_number" and content.get("wa_id"):
            conversation._apply_number_change(wp.check_wa_id(content["wa_id"]))
        if original and kind in ("edit", "revoke"):
            record._mark_original(original)
        record.mail_message_id = record._post_inbound(original).id
        record._link_earlier_replies(
            known.filtered(lambda m: m.reply_to_wamid == wamid and not (m.reply_to_id or m.reaction_to_id))
        )
        if values.get("media_state") == "pending":
            self._trigger_media_cron()
        return record

    @api.model
    def _media_values(self, kind, content):
        """The values of a message whose media (Meta's ``content`` of type ``kind``) is to download."""
        if kind not in MEDIA_TYPES or not content.get("id"):
            return {}
        return {
            "media_id": content["id"],
            "media_mimetype": content.get("mime_type"),
            "media_filename": wp.media_filename(kind, content),
            "media_state": "pending",
        }

    def _mark_original(self, original):
        """An edit or a deletion by the customer shows on the message it changes."""
        mark = _("(deleted by the customer)") if self.message_type == "revoke" else _("(edited: %s)", self.body)
        flag = "revoked" if self.message_type == "revoke" else "edited"
        original.write({"body": f"{original.body or ''}\n{mark}".strip(), flag: True})

    @api.model
    def _receive_lookup_domain(self, account, wamid, targets):
        """The messages of ``account`` with ``wamid`` or one of ``targets``, and those that arrived
        before the message ``wamid`` they point to (not linked yet)."""
        # the account in each branch: each is one index's condition (see test_webhook_indexes)
        return [
            "|",
            "&",
            ("account_id", "=", account.id),
            ("wamid", "in", [wamid, *targets]),
            "&",
            "&",
            "&",
            ("account_id", "=", account.id),
            ("reply_to_wamid", "=", wamid),
            ("reply_to_id", "=", False),
            ("reaction_to_id", "=", False),
        ]

    def write(self, vals):
        result = super().write(vals)
        if vals.get("wamid"):
            # our message learnt its wamid (the send's answer, or a status naming it) after the
            # customer had already answered or reacted to it: link those now
            self.filtered(lambda m: m.direction == "outbound")._link_waiting_replies()
        return result

    def _link_waiting_replies(self):
        for message in self:
            waiting = self.search(
                [
                    ("account_id", "=", message.account_id.id),
                    ("reply_to_wamid", "=", message.wamid),
                    ("reply_to_id", "=", False),
                    ("reaction_to_id", "=", False),
                ]
            )
            if waiting:
                message._link_earlier_replies(waiting)

    def _link_earlier_replies(self, waiting):
        """Meta does not guarantee order: the reactions, edits and replies to this message that
        arrived before it (``waiting``) get linked now, as if they had come after it."""
        self.ensure_one()
        for message in waiting.sorted(lambda m: (m.timestamp, m.id)):
            if message.message_type == "reaction":
                message.reaction_to_id = self
                continue
            message.reply_to_id = self
            if message.message_type in ("edit", "revoke"):
                message._mark_original(self)

    def _post_inbound(self, original):
        """Post the message as the customer in the lead's chatter, else the contact's."""
        self.ensure_one()
        conversation = self.conversation_id
        thread = self.lead_id or conversation.partner_id
        if not thread:
            return self.env["mail.message"]
        text = self.body or ""
        if self.message_type == "reaction":
            text = _(
                "Reacted %(emoji)s to: %(text)s",
                emoji=text,
                text=original.body or _("an earlier message"),
            )
        elif self.message_type == "edit":
            text = _("Edited a message: %s", text)
        if self.reply_to_id and self.message_type not in ("edit", "revoke"):
            text = _('In reply to "%(quoted)s": %(text)s', quoted=self.reply_to_id.body or "", text=text)
        if self.forwarded:
            text = _("Forwarded: %s", text)
        # the live push tells where it is, without reading it back
        self.env["crm.whatsapp.conversation"]._whatsapp_live(posted={self: thread})
        # a chat message: followers are notified inside Odoo, not by e-mail (see mail_thread.py)
        thread = thread.with_context(mail_create_nosubscribe=True, whatsapp_crm_chat=True)
        return thread.message_post(
            author_id=conversation.partner_id.id,
            body=plaintext2html(text),
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            reply_to=False,  # nobody is e-mailed it: no reply address to compute
        )

    # ------------------------------------------------------------
    # field = calls
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_webhook_calls(self, account, value):
        notes, contacts, received = [], value.get("contacts") or [], self.browse()
        for call in value.get("calls") or []:
            event = call.get("event") or call.get("status")
            wamid = f"{call.get('id')}:{event}"
            if self.search_count([("account_id", "=", account.id), ("wamid", "=", wamid)], limit=1):
                continue
            inbound = call.get("direction", "USER_INITIATED") == "USER_INITIATED"
            customer = call.get("from") if inbound else call.get("to")
            wa_id, user_id, profile_name, _username = wp.sender({"from": customer}, contacts)
            conversation = self.env["crm.whatsapp.conversation"]._find_or_create(account, wa_id, user_id, profile_name)
            if not conversation:
                notes.append(_("Call %s ignored: no customer.", call.get("id")))
                continue
            when = wp.to_datetime(call.get("timestamp")) or fields.Datetime.now()
            if inbound:
                conversation._register_inbound(when)
            if event == "terminate":
                body = _(
                    "Call ended (%(status)s), duration %(duration)s s",
                    status=call.get("status") or "-",
                    duration=call.get("duration") or 0,
                )
            else:
                body = _("Call %s", event)
            record = self.create(
                {
                    "account_id": account.id,
                    "conversation_id": conversation.id,
                    "partner_id": conversation.partner_id.id,
                    "lead_id": conversation.lead_id.id,
                    "direction": "inbound" if inbound else "outbound",
                    "state": "received" if inbound else "sent",
                    "wamid": wamid,
                    "message_type": "call",
                    "body": body,
                    "timestamp": when,
                    "payload": call,
                }
            )
            conversation.message_post(body=body)
            if inbound:
                received |= record
        return notes, False, received

    # ------------------------------------------------------------
    # field = smb_message_echoes: what the salesperson sent from the WhatsApp Business app
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_webhook_smb_message_echoes(self, account, value):
        """Record the messages sent from the phone app of a number used with the app and the API
        (coexistence) as outbound messages of the customer's conversation, shown in its thread."""
        for echo in value.get("message_echoes") or []:
            wamid = wp.check_id(echo.get("id"), "message id")
            wa_id = wp.check_wa_id(echo.get("to"))
            if self.search_count([("account_id", "=", account.id), ("wamid", "=", wamid)], limit=1):
                continue
            kind = (
                echo.get("type") if echo.get("type") in dict(self._fields["message_type"].selection) else "unsupported"
            )
            content = echo.get(kind) if isinstance(echo.get(kind), dict) else {}
            when = wp.to_datetime(echo.get("timestamp")) or fields.Datetime.now()
            conversation = self.env["crm.whatsapp.conversation"]._find_or_create(account, wa_id)
            values = {
                "account_id": account.id,
                "conversation_id": conversation.id,
                "partner_id": conversation.partner_id.id,
                "lead_id": conversation.lead_id.id,
                "author_id": conversation.user_id.id,
                "direction": "outbound",
                "state": "sent",
                "wamid": wamid,
                "message_type": kind,
                "body": wp.message_body(echo, self.env.lang or "en_US"),
                "timestamp": when,
                "payload": echo,
            }
            # downloaded as a customer's media is: the photo sent from the phone shows in the thread
            values.update(self._media_values(kind, content))
            self.create(values)  # posted in the thread as our outbound messages are
            conversation._register_outbound(when)
            if values.get("media_state") == "pending":
                self._trigger_media_cron()
        return [], False
