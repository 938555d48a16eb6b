"""The WhatsApp message record: what was said, by whom, to whom; its chatter note and payload.

Sending lives in ``crm_whatsapp_message_queue.py``, the policy in ``crm_whatsapp_message_policy.py``,
delivery statuses as ``mail.notification`` in ``mail_notification.py``.
"""

import logging
import re
import threading
from datetime import timedelta

from markupsafe import Markup

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError

from ..tools import webhook_payload as wp
from ..tools.whatsapp_cloud_api import WhatsAppApiError

_logger = logging.getLogger(__name__)

MESSAGE_TYPES = [
    ("text", "Text"),
    ("image", "Image"),
    ("audio", "Audio"),
    ("video", "Video"),
    ("document", "Document"),
    ("sticker", "Sticker"),
    ("location", "Location"),
    ("contacts", "Contacts"),
    ("interactive", "Interactive"),
    ("button", "Template Button"),
    ("reaction", "Reaction"),
    ("order", "Order"),
    ("system", "System"),
    ("unsupported", "Unsupported"),
    ("revoke", "Revoked"),
    ("edit", "Edited"),
    ("template", "Template"),
    ("call", "Call"),
]
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Audio formats WhatsApp plays; other audio files go as documents
AUDIO_MIMETYPES = ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")
# Meta's largest upload per media type (bytes)
MEDIA_MAX_SIZES = {
    "image": 5 * 1024 * 1024,
    "audio": 16 * 1024 * 1024,
    "video": 16 * 1024 * 1024,
    "document": 100 * 1024 * 1024,
    "sticker": 500 * 1024,
}

# Delivery progress: a status never moves to a lower rank. "failed" is final unless
# a later delivered/read proves the message arrived after all.
STATE_RANK = {"queued": 0, "unconfirmed": 1, "failed": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}

MEDIA_MAX_ATTEMPTS = 5  # media download: retried after 1, 2, 4, 8 minutes, then missing
OUTBOUND_DONE_STATES = ("sent", "delivered", "read", "played")
CAPTION_TYPES = ("image", "video", "document")
SENDABLE_TYPES = ("text", "interactive", "template", "reaction", *MEDIA_TYPES)
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
URL_RE = re.compile(r"https?://", re.IGNORECASE)
CALLBACK_PREFIX = "crm.whatsapp.message:"  # biz_opaque_callback_data of our messages


def media_type_of(mimetype):
    """WhatsApp message type sending a file of this mimetype (Meta accepts only these formats)."""
    mimetype = mimetype or ""
    if mimetype in ("image/jpeg", "image/png"):
        return "image"
    if mimetype in ("video/mp4", "video/3gpp"):
        return "video"
    if mimetype.split(";")[0].strip() in AUDIO_MIMETYPES:
        return "audio"
    return "document"


def format_size(size):
    """A file size as people write it: "500 KB", "4.2 MB"."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


class CrmWhatsappMessage(models.Model):
    _name = "crm.whatsapp.message"
    _description = "WhatsApp Message"
    _order = "timestamp desc, id desc"
    _rec_name = "wamid"

    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    conversation_id = fields.Many2one("crm.whatsapp.conversation", index=True, ondelete="cascade")
    partner_id = fields.Many2one("res.partner", "Contact", index=True)
    lead_id = fields.Many2one("crm.lead", "Lead", index=True)
    author_id = fields.Many2one("res.users", "Sent By", index="btree_not_null")
    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], required=True, index=True)
    wamid = fields.Char("WhatsApp Message ID", copy=False)  # indexed by wamid_account_unique
    message_type = fields.Selection(MESSAGE_TYPES, required=True, default="text")
    body = fields.Text(index="trigram")
    timestamp = fields.Datetime(default=fields.Datetime.now, index=True, help="When WhatsApp says it happened.")
    state = fields.Selection(
        [
            ("received", "Received"),
            ("queued", "Queued"),
            ("unconfirmed", "Awaiting Confirmation"),
            ("sent", "Sent"),
            ("delivered", "Delivered"),
            ("read", "Read"),
            ("played", "Played"),
            ("failed", "Failed"),
            ("refused", "Refused"),
        ],
        default="queued",
        required=True,
        index=True,
    )
    status_timestamp = fields.Datetime(readonly=True)
    error_code = fields.Integer(readonly=True)
    error_message = fields.Text(readonly=True)
    retry_count = fields.Integer(readonly=True)
    next_try_at = fields.Datetime(readonly=True, index=True)
    attachment_ids = fields.Many2many("ir.attachment", string="Attachments")
    media_id = fields.Char("Media ID", help="Meta's id of the media of this message.")
    media_mimetype = fields.Char()
    media_filename = fields.Char()
    media_state = fields.Selection(
        [("none", "No Media"), ("pending", "To Download"), ("done", "Downloaded"), ("missing", "Missing")],
        default="none",
        required=True,
        index=True,
    )
    media_attempts = fields.Integer(readonly=True)
    reply_to_wamid = fields.Char("Reply To (WhatsApp ID)")
    reply_to_id = fields.Many2one("crm.whatsapp.message", "Reply To", ondelete="set null", index="btree_not_null")
    reaction_to_id = fields.Many2one("crm.whatsapp.message", "Reaction To", ondelete="set null", index="btree_not_null")
    forwarded = fields.Boolean()
    revoked = fields.Boolean("Deleted by the Customer", readonly=True)
    edited = fields.Boolean("Edited by the Customer", readonly=True)
    media_preview = fields.Binary(compute="_compute_media_preview", help="The picture of an image or sticker.")
    referral_data = fields.Json(help="Click-to-WhatsApp ad that started the chat.")
    payload = fields.Json(help="The message object as WhatsApp sent it, or the request sent to WhatsApp.")
    template_id = fields.Many2one("crm.whatsapp.template", ondelete="set null")
    buttons = fields.Json(help="Reply buttons of an outbound interactive message: [{'id': ..., 'title': ...}].")
    template_parameters = fields.Json(help="Values of the template's placeholders: {placeholder: text}.")
    pricing_category = fields.Char(readonly=True)
    wa_conversation_id = fields.Char("Meta Conversation ID", readonly=True)
    mail_message_id = fields.Many2one("mail.message", "Chatter Message", ondelete="set null", index="btree_not_null")
    notification_ids = fields.One2many(
        "mail.notification", "whatsapp_message_id", "Delivery Notifications", help="The status in the chatter."
    )

    _sql_constraints = [
        ("wamid_account_unique", "unique(account_id, wamid)", "A WhatsApp message is stored once per account."),
    ]

    @api.depends("attachment_ids", "message_type")
    def _compute_media_preview(self):
        for message in self:
            pictures = message.attachment_ids.filtered(lambda a: (a.mimetype or "").startswith("image/"))
            message.media_preview = pictures[:1].datas if message.message_type in ("image", "sticker") else False

    @api.depends("direction", "message_type", "partner_id")
    def _compute_display_name(self):
        type_labels = dict(self._fields["message_type"]._description_selection(self.env))
        for message in self:
            who = message.partner_id.name or message.wamid or ""
            message.display_name = f"{who} [{type_labels.get(message.message_type, '')}]"

    # ------------------------------------------------------------------
    # Only the system writes what the system knows
    # ------------------------------------------------------------------

    @api.model
    def _whatsapp_user_writable_fields(self):
        """Fields a user (not the system) may write on a message: none. Messages are created by the
        send API (``mail.thread._message_whatsapp``) and the webhook, and changed by the send
        queue and the status webhooks, all as the system. Extend to open a field to users."""
        return set()

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("WhatsApp messages are created by sending them, not by hand."))
        messages = super().create(vals_list)
        messages.filtered(lambda m: m.direction == "outbound" and not m.mail_message_id)._post_in_chatter()
        return messages

    def write(self, vals):
        if not self.env.su and set(vals) - self._whatsapp_user_writable_fields():
            raise AccessError(_("Only the system changes WhatsApp messages: their content, status and ids."))
        result = super().write(vals)
        if {"state", "error_message"} & vals.keys():
            self.filtered(lambda m: m.direction == "outbound" and m.mail_message_id)._refresh_chatter_status()
        return result

    # ------------------------------------------------------------------
    # Chatter
    # ------------------------------------------------------------------

    def _chatter_thread(self):
        self.ensure_one()
        return self.lead_id or self.partner_id or self.conversation_id

    def _chatter_body(self):
        """What was sent; its delivery status is the note's notification (see mail_notification.py)."""
        self.ensure_one()
        content = tools.plaintext2html(self.body or "") if self.body else Markup()
        if self.message_type == "reaction":
            content = tools.plaintext2html(
                _("Reacted %(emoji)s to: %(text)s", emoji=self.body or "", text=self.reaction_to_id.body or "-")
            )
        if self.template_id:
            content = Markup("<p><b>%s</b></p>%s") % (self.template_id.display_name, content)
        if self.buttons:
            content += Markup("<p>%s</p>") % " | ".join(f"[{button['title']}]" for button in self.buttons)
        if self.media_filename and self.message_type in MEDIA_TYPES:
            content += Markup('<p><i class="fa fa-paperclip"/> %s</p>') % self.media_filename
        return Markup('<div class="o_whatsapp_crm_message">%s</div>') % content

    def _post_in_chatter(self):
        """Log each message on its lead (else contact, else conversation) as its author's WhatsApp
        message, with a delivery notification for the customer."""
        for message in self:
            thread = message._chatter_thread()
            if not thread:
                continue
            # sudo: sending was authorized by the caller; the author stays the salesperson
            mail_message = thread.sudo().message_post(
                body=message._chatter_body(),
                author_id=(message.author_id or self.env.user).partner_id.id,
                message_type="whatsapp_crm",
                subtype_xmlid="mail.mt_note",
                attachment_ids=message.attachment_ids.ids,
            )
            message.mail_message_id = mail_message
        self._refresh_chatter_status()

    def _refresh_chatter_status(self):
        """Show the delivery status of these outbound messages in their chatter notes."""
        self.env["mail.notification"].sudo()._whatsapp_sync(self.filtered("mail_message_id"))

    # ------------------------------------------------------------------
    # Payloads
    # ------------------------------------------------------------------

    def _callback_data(self):
        """``biz_opaque_callback_data`` of this message: Meta repeats it in the status webhooks, so
        that a status matches the message even when the send's answer (with its wamid) was lost."""
        self.ensure_one()
        return f"{CALLBACK_PREFIX}{self.id}"

    def _prepare_payload(self):
        """The request body of Meta's ``/messages`` endpoint (without ``messaging_product``)."""
        self.ensure_one()
        kind = self.message_type
        payload = {"recipient_type": "individual", **self.conversation_id._recipient_payload(), "type": kind}
        if self.reply_to_id.wamid and kind != "reaction":
            payload["context"] = {"message_id": self.reply_to_id.wamid}
        if kind == "text":
            payload["text"] = {"preview_url": bool(URL_RE.search(self.body)), "body": self.body}
        elif kind in MEDIA_TYPES:
            media = {"id": self.media_id}
            if self.body and kind in CAPTION_TYPES:
                media["caption"] = self.body
            if kind == "document" and self.media_filename:
                media["filename"] = self.media_filename
            payload[kind] = media
        elif kind == "reaction":
            payload["reaction"] = {"message_id": self.reaction_to_id.wamid, "emoji": self.body or ""}
        elif kind == "interactive":
            payload["interactive"] = {
                "type": "button",
                "body": {"text": self.body},
                "action": {"buttons": [{"type": "reply", "reply": dict(button)} for button in self.buttons]},
            }
        else:  # template, see _whatsapp_policy_refusals()
            payload["template"] = self.template_id._prepare_payload(self.template_parameters or {})
        payload["biz_opaque_callback_data"] = self._callback_data()
        return payload

    @api.model
    def _whatsapp_parts(self, body="", template=False, attachments=None, buttons=None, reaction_to=None):
        """The messages that say this, whoever gets them: values of ``crm.whatsapp.message``.

        A template is one message (its values are rendered per record by the send API), reply
        buttons one interactive message, free text one message per attachment with the text as the
        first possible caption, or a text message.
        """
        if template:
            return [{"message_type": "template", "template_id": template.id}]
        if reaction_to:
            # ``body`` is the emoji; an empty one removes our reaction
            return [{"message_type": "reaction", "body": body, "reaction_to_id": reaction_to.id}]
        if buttons:
            buttons = [{"id": f"button_{index}", "title": title} for index, title in enumerate(buttons, 1)]
            return [{"message_type": "interactive", "body": body, "buttons": buttons}]
        caption, parts = body, []
        for attachment in attachments or []:
            media_type = media_type_of(attachment.mimetype)
            media_caption = caption if media_type in CAPTION_TYPES else False
            caption = caption if not media_caption else False
            parts.append(
                {
                    "message_type": media_type,
                    "body": media_caption,
                    "attachment_ids": [(6, 0, attachment.ids)],
                    "media_filename": attachment.name,
                    "media_mimetype": attachment.mimetype,
                }
            )
        if caption or not parts:
            parts.insert(0, {"message_type": "text", "body": caption})
        return parts

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    @api.model
    def _action_open(self, domain, context=None):
        """The window action listing the messages of ``domain``."""
        return {
            "type": "ir.actions.act_window",
            "name": _("WhatsApp Messages"),
            "res_model": self._name,
            "view_mode": "list,form",
            "domain": domain,
            "context": {**(context or {}), "create": False},
        }

    # ------------------------------------------------------------------
    # Media of received messages and phone-app echoes
    # ------------------------------------------------------------------

    def _trigger_media_cron(self, at=None):
        self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media").sudo()._trigger(at=at)

    @api.model
    def _cron_download_media(self, limit=50):
        """Download the pending media of received messages and phone-app echoes; retry with
        backoff, then give up.
        One API client per account and run, closed at the end of the run."""
        now = fields.Datetime.now()
        messages = self.search(
            [
                ("media_state", "=", "pending"),
                "|",
                ("next_try_at", "=", False),
                ("next_try_at", "<=", now),
            ],
            order="id",
            limit=limit,
        )
        apis = {}  # account: client, or the UserError of an account without token
        try:
            for message in messages:
                account = message.account_id
                if account not in apis:
                    try:
                        apis[account] = account._get_api()
                    except UserError as error:
                        apis[account] = error
                message._download_media(apis[account])
                if not getattr(threading.current_thread(), "testing", False):  # keep each download done
                    self.env.cr.commit()  # pylint: disable=invalid-commit
        finally:
            for api_client in apis.values():
                if not isinstance(api_client, UserError):
                    api_client.close()
        if len(messages) == limit:
            self._trigger_media_cron()

    def _download_media(self, api_client):
        """Download this message's media with ``api_client`` (or its account's UserError)."""
        self.ensure_one()
        try:
            if isinstance(api_client, UserError):
                raise api_client
            info = api_client.get_media_info(self.media_id)
            content = api_client.download_media(info["url"])
            if not isinstance(content, bytes) or not content:
                raise ValueError("empty or invalid media content")
        except (WhatsAppApiError, UserError, KeyError, TypeError, ValueError) as error:
            # a UserError (account without access token) must not stop the cron for every other message
            attempts = self.media_attempts + 1
            if isinstance(error, WhatsAppApiError):
                reason = f"[{error.code}] {error.details or error.title}"
            else:
                reason = error.args[0] if isinstance(error, UserError) else repr(error)
            _logger.info("WhatsApp media of message %s not downloaded (attempt %s): %s", self.id, attempts, reason)
            self.write(
                {
                    "media_attempts": attempts,
                    "media_state": "missing" if attempts >= MEDIA_MAX_ATTEMPTS else "pending",
                    "next_try_at": fields.Datetime.now() + timedelta(minutes=2 ** (attempts - 1)),
                    "error_message": _("Media download failed: %s", reason),
                }
            )
            if self.media_state == "pending":
                self._trigger_media_cron(at=self.next_try_at)
            return False
        mimetype = (info.get("mime_type") or self.media_mimetype or "application/octet-stream").split(";")[0]
        attachment = self.env["ir.attachment"].create(
            {
                "name": self.media_filename or wp.media_filename(self.message_type, {"id": self.media_id}, mimetype),
                "raw": content,
                "mimetype": mimetype,
                "res_model": self._name,
                "res_id": self.id,
            }
        )
        self.write(
            {
                "attachment_ids": [(4, attachment.id)],
                "media_state": "done",
                "media_mimetype": mimetype,
                "media_attempts": self.media_attempts + 1,
                "next_try_at": False,
            }
        )
        if self.mail_message_id:
            self.mail_message_id.attachment_ids = [(4, attachment.id)]
        return attachment
