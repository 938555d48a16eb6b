import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from markupsafe import Markup

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError

from ..tools import webhook_payload as wp
from ..tools.throttle import Throttle
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
STATE_RANK = {"queued": 0, "failed": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}
WEBHOOK_STATUSES = ("sent", "delivered", "read", "played", "failed")
MEDIA_MAX_ATTEMPTS = 5  # media download: retried after 1, 2, 4, 8 minutes, then missing

OUTBOUND_DONE_STATES = ("sent", "delivered", "read", "played")
CAPTION_TYPES = ("image", "video", "document")
SENDABLE_TYPES = ("text", "interactive", "template", *MEDIA_TYPES)
SEND_QUEUE_LOCK = 0x5741_4352_4D53_4E44  # advisory lock of the send cron ("WACRMSND")
MAX_SEND_WORKERS = 10  # the size of the HTTP client's connection pool
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
URL_RE = re.compile(r"https?://", re.IGNORECASE)

# Sending settings (ir.config_parameter "whatsapp_crm.<key>") and their defaults.
SEND_DEFAULTS = {
    "send_batch_size": 1000,  # messages taken per cron run
    "send_run_seconds": 60,  # a cron run stops dispatching after this; the rest waits for the next run
    "send_max_workers": 8,  # concurrent HTTP calls, at most MAX_SEND_WORKERS
    # requests are spaced 10% wider than the account's throughput allows, so that network
    # jitter never puts throughput_limit + 1 requests into one second at Meta's end
    "throughput_margin": 0.1,
    "send_max_retries": 5,
    "retry_base_seconds": 4,  # retry n waits base * 4**n seconds: 4 s, 16 s, 64 s, ~4 min, ~17 min
    # Meta's pair rate is about one message every 6 s per recipient with small bursts allowed:
    # two messages may go together (e.g. a text and its picture), then one every 6 s.
    "pair_rate_spacing": 6.0,
    "pair_rate_burst": 2,
}

# Only the system changes these once a message exists (see write()).
SENDER_FIELDS = {"direction", "author_id", "account_id", "conversation_id", "lead_id", "partner_id", "attachment_ids"}

STATUS_ICONS = {
    "queued": "fa fa-clock-o",
    "sent": "fa fa-check",
    "delivered": "fa fa-check-circle-o",
    "read": "fa fa-check-circle text-info",
    "played": "fa fa-check-circle text-info",
    "failed": "fa fa-exclamation-triangle text-danger",
    "refused": "fa fa-ban text-danger",
}


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


def _call_send(api, payload):
    """Worker-thread side of a send: plain data in, ``(wamid, error)`` out, no ORM."""
    try:
        return api.send_message(payload), None
    except WhatsAppApiError as error:
        return None, error
    except Exception as error:
        _logger.exception("Unexpected error while sending a WhatsApp message")
        return None, WhatsAppApiError(title=str(error), retryable=False)


class CrmWhatsappMessage(models.Model):
    _name = "crm.whatsapp.message"
    _description = "WhatsApp Message"
    _order = "timestamp desc, id desc"
    _rec_name = "wamid"

    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    conversation_id = fields.Many2one("crm.whatsapp.conversation", index=True, ondelete="cascade")
    partner_id = fields.Many2one("res.partner", "Contact", index=True)
    lead_id = fields.Many2one("crm.lead", "Lead", index=True)
    author_id = fields.Many2one("res.users", "Sent By")
    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], required=True, index=True)
    wamid = fields.Char("WhatsApp Message ID", index=True, copy=False)
    message_type = fields.Selection(MESSAGE_TYPES, required=True, default="text")
    body = fields.Text()
    timestamp = fields.Datetime(default=fields.Datetime.now, index=True, help="When WhatsApp says it happened.")
    state = fields.Selection(
        [
            ("received", "Received"),
            ("queued", "Queued"),
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
    reply_to_id = fields.Many2one("crm.whatsapp.message", "Reply To", ondelete="set null")
    reaction_to_id = fields.Many2one("crm.whatsapp.message", "Reaction To", ondelete="set null")
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
    # CRUD: outbound messages show in the chatter of their lead / contact
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        messages = super().create(vals_list)
        messages._check_sender_access()
        messages.filtered(lambda m: m.direction == "outbound" and not m.mail_message_id)._post_in_chatter()
        return messages

    def write(self, vals):
        if not self.env.su and SENDER_FIELDS & vals.keys():
            raise AccessError(_("The sender, recipient and files of a WhatsApp message cannot be changed."))
        result = super().write(vals)
        if {"state", "error_message"} & vals.keys():
            self.filtered(lambda m: m.direction == "outbound" and m.mail_message_id)._refresh_chatter_status()
        return result

    def _check_sender_access(self):
        """A user (not the system) only creates outbound messages that they send themselves,
        about documents and with files they may read: the chatter post and the send run as
        superuser afterwards."""
        if self.env.su:
            return
        for message in self:
            if message.direction != "outbound" or message.author_id != self.env.user:
                raise AccessError(_("You can only create WhatsApp messages that you send yourself."))
            if message.state not in ("queued", "refused"):
                raise AccessError(_("A new WhatsApp message is queued before it is sent."))
        for records in (self.lead_id, self.partner_id, self.conversation_id, self.reply_to_id, self.template_id):
            records.check_access("read")
        if self.attachment_ids:
            self.attachment_ids.check("read")

    def _chatter_thread(self):
        self.ensure_one()
        return self.lead_id or self.partner_id or self.conversation_id

    def _chatter_body(self):
        self.ensure_one()
        content = tools.plaintext2html(self.body or "") if self.body else Markup()
        if self.template_id:
            content = Markup("<p><b>%s</b></p>%s") % (self.template_id.display_name, content)
        if self.buttons:
            content += Markup("<p>%s</p>") % " | ".join(f"[{button['title']}]" for button in self.buttons)
        if self.media_filename and self.message_type in MEDIA_TYPES:
            content += Markup('<p><i class="fa fa-paperclip"/> %s</p>') % self.media_filename
        state_label = dict(self._fields["state"]._description_selection(self.env)).get(self.state, self.state)
        status = Markup('<i class="fa fa-whatsapp"/> WhatsApp: <i class="%s"/> %s') % (
            STATUS_ICONS.get(self.state, ""),
            state_label,
        )
        if self.state in ("failed", "refused") and self.error_message:
            status += Markup(" - %s") % self.error_message
        return Markup('<div class="o_whatsapp_crm_message">%s<p class="small text-muted mb-0">%s</p></div>') % (
            content,
            status,
        )

    def _post_in_chatter(self):
        """Log each message on its lead (else contact, else conversation) as its author's note."""
        for message in self:
            thread = message._chatter_thread()
            if not thread:
                continue
            # sudo: sending was authorized by the caller; the author stays the salesperson
            mail_message = thread.sudo().message_post(
                body=message._chatter_body(),
                author_id=(message.author_id or self.env.user).partner_id.id,
                message_type="comment",
                subtype_xmlid="mail.mt_note",
                attachment_ids=message.attachment_ids.ids,
            )
            message.mail_message_id = mail_message

    def _refresh_chatter_status(self):
        for message in self:
            mail_message = message.mail_message_id.sudo()
            mail_message.write({"body": message._chatter_body()})
            mail_message._bus_send_store(mail_message, {"body": mail_message.body})

    # ------------------------------------------------------------------
    # Recipients and policy
    # ------------------------------------------------------------------

    @api.model
    def _whatsapp_number(self, record):
        """E.164 number of a record (lead, contact...) from its mobile/phone, or False."""
        if not record or not record._phone_get_number_fields():
            return False
        return record._phone_format(raise_exception=False)

    @api.model
    def _find_conversation(self, account, record, create=True):
        """Conversation of ``account`` reaching ``record`` (a conversation, lead, contact...).

        Prefers the record's own conversation, then its number (creating the conversation when
        ``create``), then a conversation of its contact (e.g. a username-only user).
        """
        Conversation = self.env["crm.whatsapp.conversation"]
        if record._name == Conversation._name:
            if record.account_id == account:
                return record
            # the same customer on another of our numbers
            customer = {"wa_id": record.wa_id or None, "wa_user_id": record.wa_user_id or None}
            if not create:
                return Conversation._find(account, **customer)
            return Conversation._find_or_create(account, partner=record.partner_id or None, **customer)
        partner = record if record._name == "res.partner" else record["partner_id"] if "partner_id" in record else None

        def in_account(conversations):
            return conversations.filtered(lambda c: c.account_id == account)[:1]

        if record._name == "crm.lead" and (conversation := in_account(record.whatsapp_conversation_ids)):
            return conversation
        number = self._whatsapp_number(record) or self._whatsapp_number(partner)
        if number and not create:
            return Conversation._find(account, wa_id=number)
        if number:
            conversation = Conversation._find_or_create(
                account, wa_id=number, partner=partner or None, user=self._conversation_owner(record)
            )
            if record._name == "crm.lead" and not conversation.lead_id:
                conversation.lead_id = record
            return conversation
        return in_account(partner.whatsapp_conversation_ids) if partner else Conversation

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

    @api.model
    def _account_for(self, records):
        """The account that last talked with ``records`` (conversations, leads, contacts...),
        else the first account of the user's companies."""
        Conversation = self.env["crm.whatsapp.conversation"]
        if records._name == Conversation._name:
            conversations = records
        else:
            partners = (
                records
                if records._name == "res.partner"
                else records["partner_id"]
                if "partner_id" in records
                else None
            )
            conversations = records.whatsapp_conversation_ids if records._name == "crm.lead" else Conversation
            conversations |= partners.whatsapp_conversation_ids if partners else Conversation
        # a document of a company is answered from that company's numbers
        company = records._name != Conversation._name and "company_id" in records and records[:1].company_id
        if company:
            conversations = conversations.filtered(lambda c: c.company_id == company)
        latest = conversations.sorted(lambda c: (c.last_message_at or fields.Datetime.to_datetime("1970-01-01"), c.id))[
            -1:
        ]
        Account = self.env["crm.whatsapp.account"]
        companies = company or self.env.companies
        return latest.account_id or Account.search([("company_id", "in", companies.ids)], limit=1)

    @api.model
    def _conversation_owner(self, record):
        """Who answers a conversation a user starts: the lead's salesperson, else the sender."""
        if record._name == "crm.lead" and record.user_id:
            return record.user_id
        user = self.env.user
        return user if not self.env.su and user._is_internal() else self.env["res.users"]

    def _whatsapp_number_e164(self):
        """The recipient's number in E.164, False for username-only users."""
        self.ensure_one()
        wa_id = self.conversation_id.wa_id
        return self._phone_format(number=f"+{wa_id}", raise_exception=False) if wa_id else False

    def _whatsapp_is_opted_out(self):
        """Consent hook: True when nothing may be sent to this recipient.

        Today: the number is in the phone blacklist. The consent feature extends this.
        """
        self.ensure_one()
        number = self._whatsapp_number_e164()
        # sudo: the blacklist is not readable by salespeople, only its verdict matters
        return bool(number and self.env["phone.blacklist"].sudo().search_count([("number", "=", number)], limit=1))

    def _get_send_refusal(self):
        """Why this outbound message may not be sent (translated), or False."""
        self.ensure_one()
        conversation = self.conversation_id
        # sudo: the token is only readable by administrators, its presence is what matters
        if self.account_id.token_invalid or not self.account_id.sudo().access_token:
            return _("The access token of the WhatsApp account %s is invalid: update it first.", self.account_id.name)
        if not conversation.wa_id and not conversation.wa_user_id:
            return _("This recipient has no WhatsApp number.")
        if conversation.account_id != self.account_id:
            return _("This conversation belongs to another WhatsApp account.")
        if conversation.wa_id and not self._whatsapp_number_e164():
            return _("+%s is not a valid WhatsApp number.", conversation.wa_id)
        if self._whatsapp_is_opted_out():
            return _("This number opted out of WhatsApp messages.")
        if self.message_type not in SENDABLE_TYPES:
            return _("Messages of type %s cannot be sent.", self.message_type)
        if self.message_type == "template":
            if self.template_id.status != "approved" or not self.template_id.active:
                return _("Only approved templates can be sent.")
            if self.template_id.account_id != self.account_id:
                return _("This template belongs to another WhatsApp account.")
            if set(self.template_id._placeholders()) - set(self.template_parameters or {}):
                return _("The template's variables have changed: write the message again.")
        elif not conversation.can_send_free_text:
            return _("Outside the 24-hour window: choose an approved template")
        if self.message_type == "interactive":
            if not self.body or not self.buttons or len(self.buttons) > MAX_BUTTONS:
                return _("An interactive message needs a text and one to %s reply buttons.", MAX_BUTTONS)
            if any(not b.get("title") or len(b["title"]) > MAX_BUTTON_TITLE for b in self.buttons):
                return _("A reply button title has 1 to %s characters.", MAX_BUTTON_TITLE)
        if self.message_type in MEDIA_TYPES and not (self.media_id or self.attachment_ids):
            return _("The media to send is missing.")
        if self.message_type in MEDIA_TYPES and not self.media_id:
            # sudo: the size only; the file was checked readable when the message was created
            attachment = self.attachment_ids[:1].sudo()
            limit = MEDIA_MAX_SIZES[self.message_type]
            if attachment.file_size > limit:
                return _(
                    "%(file)s is too large for WhatsApp: %(size)s, at most %(limit)s for this kind of file.",
                    file=attachment.name,
                    size=tools.human_size(attachment.file_size),
                    limit=tools.human_size(limit),
                )
        if self.message_type == "text" and not self.body:
            return _("The message is empty.")
        return False

    def _whatsapp_record_opt_out(self):
        """WhatsApp said the user stopped our messages (131050): remember it."""
        numbers = [n for n in (m._whatsapp_number_e164() for m in self) if n]
        if numbers:
            self.env["phone.blacklist"].sudo()._add(
                numbers, message=_("The customer stopped WhatsApp marketing messages (error 131050).")
            )

    # ------------------------------------------------------------------
    # Payloads
    # ------------------------------------------------------------------

    def _prepare_payload(self):
        """The request body of Meta's ``/messages`` endpoint (without ``messaging_product``)."""
        self.ensure_one()
        kind = self.message_type
        payload = {"recipient_type": "individual", **self.conversation_id._recipient_payload(), "type": kind}
        if self.reply_to_id.wamid:
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
        elif kind == "interactive":
            payload["interactive"] = {
                "type": "button",
                "body": {"text": self.body},
                "action": {"buttons": [{"type": "reply", "reply": dict(button)} for button in self.buttons]},
            }
        else:  # template, see _get_send_refusal()
            payload["template"] = self.template_id._prepare_payload(self.template_parameters or {})
        return payload

    def _upload_media(self):
        """Upload the attachments of media messages lacking a media id, once per file and account."""
        to_upload = self.filtered(lambda m: m.message_type in MEDIA_TYPES and not m.media_id)
        uploaded = {}  # (account, attachment): (media id, error)
        with to_upload._api_clients() as apis:
            for message in to_upload:
                attachment = message.attachment_ids[:1]
                key = (message.account_id, attachment)
                if key not in uploaded:
                    try:
                        api = apis[message.account_id]
                        media_id = api.upload_media(attachment.raw, attachment.mimetype, attachment.name)
                        uploaded[key] = (media_id, None)
                    except WhatsAppApiError as error:
                        uploaded[key] = (None, error)
                media_id, error = uploaded[key]
                if error:
                    message._apply_result(error=error)
                else:
                    message.write({"media_id": media_id})
        return self.filtered(lambda m: m.state == "queued" and (m.media_id or m.message_type not in MEDIA_TYPES))

    # ------------------------------------------------------------------
    # The send service
    # ------------------------------------------------------------------

    @contextmanager
    def _api_clients(self):
        """``{account: API client}`` for the accounts of these messages, closed afterwards."""
        apis = {account: account._get_api() for account in self.account_id}
        try:
            yield apis
        finally:
            for api in apis.values():
                api.close()

    def _get_send_setting(self, key):
        default = SEND_DEFAULTS[key]
        value = self.env["ir.config_parameter"].sudo().get_param(f"whatsapp_crm.{key}")
        try:
            return type(default)(value) if value else default
        except ValueError:
            return default

    def _enqueue(self):
        """Queue these outbound messages for the cron; refusals are recorded at once."""
        queued = self._refuse_unsendable()
        if queued:
            self._trigger_send_cron()
        return queued

    def action_retry(self):
        """Queue failed or refused outbound messages again (a new attempt, checked again)."""
        retried = self.filtered(lambda m: m.direction == "outbound" and m.state in ("failed", "refused"))
        retried.write(
            {"state": "queued", "retry_count": 0, "next_try_at": False, "error_code": 0, "error_message": False}
        )
        retried._enqueue()

    def _trigger_send_cron(self, at=None):
        self.env.ref("whatsapp_crm.ir_cron_send_whatsapp_queue").sudo()._trigger(at=at)

    def _refuse_unsendable(self, raise_exception=False):
        """Check the policy of queued outbound messages; return those allowed.

        :param raise_exception: raise the first refusal as a UserError (interactive sends)
        """
        allowed = self.browse()
        for message in self.filtered(lambda m: m.direction == "outbound" and m.state == "queued"):
            reason = message._get_send_refusal()
            if reason and raise_exception:
                raise UserError(reason)
            if reason:
                message.write({"state": "refused", "error_message": reason, "next_try_at": False})
            else:
                allowed |= message
        return allowed

    def _prepare_to_send(self, raise_exception=False):
        """Policy, media upload and payload of each message; return those ready to go."""
        ready = self._refuse_unsendable(raise_exception=raise_exception)._upload_media()
        for message in ready:
            message.payload = message._prepare_payload()
        return ready

    def _send(self, raise_exception=False):
        """Send these outbound messages now, in this thread: the interactive path.

        Queued messages (bulk) go through :meth:`_process_queue` instead.
        :param raise_exception: a policy refusal raises a UserError (nothing is sent)
        :return: the messages handled (see their ``state`` and ``error_message``)
        """
        ready = self._prepare_to_send(raise_exception=raise_exception)
        with ready._api_clients() as apis:
            for message in ready:
                message._apply_result(*_call_send(apis[message.account_id], message.payload))
        return self

    def _apply_result(self, wamid=None, error=None):
        """Record the API's answer: sent, retry later with backoff, or failed for good."""
        now = fields.Datetime.now()
        if not error:
            self.write(
                {
                    "state": "sent",
                    "wamid": wamid,
                    "timestamp": now,
                    "error_code": 0,
                    "error_message": False,
                    "next_try_at": False,
                }
            )
            self.conversation_id._register_outbound(now)
            return
        self._handle_api_error(error)
        values = {"error_code": error.code or 0, "error_message": error.get_message(self.env.lang)}
        if error.retryable and self.retry_count < self._get_send_setting("send_max_retries"):
            delay = self._get_send_setting("retry_base_seconds") * 4**self.retry_count
            values.update(retry_count=self.retry_count + 1, next_try_at=now + timedelta(seconds=delay))
            self.write(values)
            self._trigger_send_cron(at=values["next_try_at"])
            return
        self.write({**values, "state": "failed", "next_try_at": False})

    def _handle_api_error(self, error):
        """What an error says beyond these messages: an invalid token, a customer's opt-out."""
        self.account_id._handle_api_error(error)
        if error.code == 131050:
            self._whatsapp_record_opt_out()

    def _failed_status_values(self, errors):
        """WhatsApp reported, after accepting it, that the message failed: explain it as a send error."""
        if not errors:
            return {"error_code": 0, "error_message": _("WhatsApp reported the message as failed, without a reason.")}
        error = WhatsAppApiError.from_error(errors[0], None)
        self._handle_api_error(error)
        return {"error_code": error.code or 0, "error_message": error.get_message(self.env.lang)}

    @api.model
    def _process_queue(self):
        """Cron: send due queued outbound messages in batches, throttled.

        One run at a time per database: a run commits as it goes, so row locks would not
        last; a session-level advisory lock does (and dies with the connection).
        """
        cr = self.env.cr
        cr.execute("SELECT pg_try_advisory_lock(%s)", [SEND_QUEUE_LOCK])
        if not cr.fetchone()[0]:
            _logger.info("WhatsApp messages are being sent by another run; this one stops.")
            return
        try:
            self._process_queue_locked()
        except Exception:
            cr.rollback()  # the run fails anyway; the lock is released on a usable transaction
            raise
        finally:
            cr.execute("SELECT pg_advisory_unlock(%s)", [SEND_QUEUE_LOCK])

    @api.model
    def _process_queue_locked(self):
        batch_size = self._get_send_setting("send_batch_size")
        due = [
            ("direction", "=", "outbound"),
            ("state", "=", "queued"),
            "|",
            ("next_try_at", "=", False),
            ("next_try_at", "<=", fields.Datetime.now()),
        ]
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        messages = self.search(due, order="id", limit=batch_size)
        ready = messages._prepare_to_send()
        if auto_commit:
            # refusals and payloads are kept even if sending breaks
            self.env.cr.commit()  # pylint: disable=invalid-commit
        ready._dispatch(auto_commit=auto_commit)
        if self.search_count(due, limit=1):
            self._trigger_send_cron()

    def _whatsapp_clock(self):
        """(monotonic clock, sleep) of the dispatcher; tests may replace them with a fake clock.

        The system clock is read directly: waiting for real time must not depend on a frozen
        ``time.monotonic`` (freezegun in tests).
        """
        if hasattr(time, "clock_gettime"):
            return partial(time.clock_gettime, time.CLOCK_MONOTONIC), time.sleep
        return time.monotonic, time.sleep

    def _whatsapp_executor(self, max_workers):
        return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="whatsapp_crm_send")

    def _dispatch(self, auto_commit=False):
        """Send prepared messages within the throughput and pair-rate limits.

        HTTP calls run in a bounded thread pool with plain data; every ORM read and write stays
        in this thread. Messages not dispatched within ``send_run_seconds`` stay queued.
        """
        if not self:
            return
        clock, sleep = self._whatsapp_clock()
        max_workers = min(max(self._get_send_setting("send_max_workers"), 1), MAX_SEND_WORKERS)
        margin = 1 + max(self._get_send_setting("throughput_margin"), 0.0)
        throttle = Throttle(
            {account: account.throughput_limit / margin for account in self.account_id},
            self._get_send_setting("pair_rate_spacing"),
            self._get_send_setting("pair_rate_burst"),
            clock=clock,
        )
        self._seed_pair_rate(throttle)
        # (account, recipient, what to send): the pair rate applies per account and recipient
        pending = [(m.account_id, (m.account_id.id, m.conversation_id.id), (m.id, m.payload)) for m in self]
        run_seconds = self._get_send_setting("send_run_seconds")
        deadline, slept = clock() + run_seconds, 0.0  # slept: also ends the run if the clock is frozen
        running = {}  # future -> message id
        slots = threading.BoundedSemaphore(max_workers)

        def collect(block=False):
            done = [f for f in running if block or f.done()]
            for future in done:
                self.browse(running.pop(future))._apply_result(*future.result())
            if any(account.token_invalid for account in self.account_id):
                # WhatsApp refused the token: the account's other messages stay queued
                # (the next run refuses them with the reason) instead of failing one by one
                pending[:] = [item for item in pending if not item[0].token_invalid]
            if auto_commit and done:
                # a message WhatsApp accepted is recorded at once: if this run is killed,
                # the next one must not send it again
                self.env.cr.commit()  # pylint: disable=invalid-commit

        with self._api_clients() as apis, self._whatsapp_executor(max_workers) as pool:
            while pending and clock() < deadline and slept < run_seconds:
                slots.acquire()  # a free worker first, so the request starts when it is allowed
                index, wait = throttle.pick(pending)
                if index is None:
                    slots.release()
                    collect()
                    pause = min(wait, max(deadline - clock(), 0))
                    sleep(pause)
                    slept += pause
                    continue
                account, _recipient, (message_id, payload) = pending.pop(index)
                future = pool.submit(_call_send, apis[account], payload)
                future.add_done_callback(lambda _f: slots.release())
                running[future] = message_id
                collect()
            collect(block=True)
        if auto_commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _seed_pair_rate(self, throttle):
        """Feed the throttle with what was sent recently to the same recipients."""
        spacing = self._get_send_setting("pair_rate_spacing")
        horizon = fields.Datetime.now() - timedelta(seconds=spacing * self._get_send_setting("pair_rate_burst") + 1)
        recent = self.search(
            [
                ("conversation_id", "in", self.conversation_id.ids),
                ("direction", "=", "outbound"),
                ("state", "in", OUTBOUND_DONE_STATES),
                ("timestamp", ">=", horizon),
            ],
            order="timestamp, id",
        )
        now = fields.Datetime.now()
        for message in recent:
            # timestamps are stored to the second: count a message as up to a second younger
            age = max((now - message.timestamp).total_seconds() - 1, 0)
            throttle.seed((message.account_id.id, message.conversation_id.id), age)

    # ------------------------------------------------------------------
    # Webhooks: delivery statuses; media of inbound messages
    # ------------------------------------------------------------------

    @api.model
    def _whatsapp_apply_statuses(self, account, statuses):
        """Apply the ``statuses`` of a ``messages`` change; return ``(notes, wait)``: wait when a
        status names a message not stored yet (its send's response may still be on its way)."""
        notes, wait = [], False
        for status in statuses:
            if not self._whatsapp_apply_status(account, status):
                notes.append(
                    _(
                        "Status %(status)s for unknown message %(wamid)s.",
                        status=status.get("status"),
                        wamid=status.get("id"),
                    )
                )
                wait = True
        return notes, wait

    @api.model
    def _whatsapp_apply_status(self, account, status):
        """Move an outbound message forward; return False if the message is unknown."""
        wamid = status.get("id")
        if not wamid or not isinstance(wamid, str):
            return False  # ("wamid", "=", None) would match the queued messages, which have no wamid yet
        message = self.search(
            [("account_id", "=", account.id), ("wamid", "=", wamid), ("direction", "=", "outbound")], limit=1
        )
        if not message:
            return False
        new, values = status.get("status"), {}
        if new in WEBHOOK_STATUSES and self._status_moves(message.state, new):
            values.update(state=new, status_timestamp=wp.to_datetime(status.get("timestamp")))
            if new == "failed":
                values.update(message._failed_status_values(status.get("errors") or []))
        pricing_category = (status.get("pricing") or {}).get("category")
        if pricing_category and pricing_category != message.pricing_category:
            values["pricing_category"] = pricing_category
        wa_conversation_id = (status.get("conversation") or {}).get("id")
        if wa_conversation_id and wa_conversation_id != message.wa_conversation_id:
            values["wa_conversation_id"] = wa_conversation_id
        if values:
            message.write(values)
        return True

    @staticmethod
    def _status_moves(current, new):
        """Statuses never go back; failed only ends a message not yet delivered, and only
        delivered/read/played (proof of arrival) override a failure."""
        if current == new:
            return False
        if new == "failed":
            return STATE_RANK.get(current, 0) <= STATE_RANK["sent"]
        if current == "failed":
            return STATE_RANK[new] >= STATE_RANK["delivered"]
        return STATE_RANK[new] > STATE_RANK.get(current, 0)

    def _trigger_media_cron(self, at=None):
        self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media").sudo()._trigger(at=at)

    @api.model
    def _cron_download_media(self, limit=50):
        """Download the pending media of inbound messages; retry with backoff, then give up.
        One API client per account and run, closed at the end of the run."""
        now = fields.Datetime.now()
        messages = self.search(
            [
                ("media_state", "=", "pending"),
                ("direction", "=", "inbound"),
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
