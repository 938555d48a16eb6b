"""Durable log of WhatsApp webhook deliveries and everything they become."""

import hashlib
import json
import logging
import threading
from datetime import timedelta

import psycopg2.errors
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import mute_logger, plaintext2html

from ..tools import webhook_payload as wp
from ..tools.phone import wa_id_variants
from ..tools.whatsapp_cloud_api import WhatsAppApiError
from .crm_whatsapp_message import MEDIA_TYPES, STATE_RANK

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # processing: retried after 1, 2, 4 ... 64 minutes, then only by hand
MEDIA_MAX_ATTEMPTS = 5
STATUS_WAIT_ATTEMPTS = 3  # a status may come before the send's response stored its wamid
# Webhook fields applied by a method ``_apply_<field>(account, value) -> (notes, wait)``
HANDLED_FIELDS = (
    "messages",
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
    "phone_number_quality_update",
    "account_update",
    "user_preferences",
    "calls",
)
MESSAGE_STATUSES = ("sent", "delivered", "read", "played", "failed")
TEMPLATE_STATUSES = {
    "APPROVED": "approved",
    "REINSTATED": "approved",
    "REJECTED": "rejected",
    "PENDING": "pending",
    "IN_APPEAL": "pending",
    "PAUSED": "paused",
    "DISABLED": "disabled",
    "PENDING_DELETION": "disabled",
    "DELETED": "disabled",
    "ARCHIVED": "disabled",
}


def _backoff(attempts):
    return timedelta(minutes=2 ** max(attempts - 1, 0))


def _auto_commit():
    return not getattr(threading.current_thread(), "testing", False)


class CrmWhatsappWebhookEvent(models.Model):
    _name = "crm.whatsapp.webhook.event"
    _description = "WhatsApp Webhook Event"
    _order = "id desc"

    account_id = fields.Many2one("crm.whatsapp.account", index=True, ondelete="cascade")
    payload = fields.Text(required=True, help="The raw body as WhatsApp sent it.")
    payload_hash = fields.Char(index=True, readonly=True, help="SHA-256 of the raw body: spots Meta's re-deliveries.")
    fields_summary = fields.Char("Fields", readonly=True, help="The webhook fields of the payload.")
    received_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("failed", "Failed"), ("ignored", "Ignored")],
        default="pending",
        required=True,
        index=True,
    )
    error = fields.Text(readonly=True, help="Why processing failed, or notes about what was not applied.")
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    processed_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("payload_hash_unique", "unique(payload_hash)", "A webhook delivery is stored once."),
    ]

    # ------------------------------------------------------------
    # Storing
    # ------------------------------------------------------------

    @api.model
    def _store(self, raw, payload, account):
        """Store a verified delivery; return the event, or an empty recordset for a re-delivery."""
        digest = hashlib.sha256(raw).hexdigest()
        if self.search_count([("payload_hash", "=", digest)], limit=1):
            return self.browse()
        names = sorted({str(field) for _waba, field, _value in wp.iter_changes(payload) if field})
        try:
            # the same delivery arriving twice at once: the unique hash lets one of them in
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                return self.create(
                    {
                        "account_id": account.id,
                        "payload": raw.decode(),
                        "payload_hash": digest,
                        "fields_summary": ", ".join(names),
                    }
                )
        except psycopg2.errors.UniqueViolation:
            return self.browse()

    @api.autovacuum
    def _gc_processed_events(self):
        """Forget processed deliveries after the retention period (days, 0 keeps them)."""
        days = int(self.env["ir.config_parameter"].sudo().get_param("whatsapp_crm.webhook_event_retention_days", 60))
        if days > 0:
            limit_date = fields.Datetime.now() - timedelta(days=days)
            self.search([("state", "in", ("done", "ignored")), ("received_at", "<", limit_date)]).unlink()

    # ------------------------------------------------------------
    # Processing
    # ------------------------------------------------------------

    def action_process_again(self):
        # only those who may edit the log (managers) re-process it; processing itself writes
        # contacts, leads and account notes on WhatsApp's behalf
        self.check_access("write")
        events = self.sudo()
        events.write({"state": "pending", "next_attempt_at": False, "processed_at": False})
        events._process()

    @api.model
    def _cron_process(self, limit=200):
        """Retry failed events whose time has come, and pending ones left behind."""
        now = fields.Datetime.now()
        events = self.search(
            [
                ("state", "in", ("pending", "failed")),
                ("attempts", "<", MAX_ATTEMPTS),
                "|",
                ("next_attempt_at", "<=", now),
                "&",
                ("next_attempt_at", "=", False),
                ("received_at", "<=", now - timedelta(minutes=1)),
            ],
            order="id",
            limit=limit,
        )
        for event in events:
            if _auto_commit():
                # each event in its own transaction: one failure does not undo the others
                self.env.cr.commit()  # pylint: disable=invalid-commit
            event._process()

    def _process(self):
        """Apply the events, each in a savepoint: a failure marks the event failed for a later retry."""
        for event in self:
            cr = self.env.cr
            if cr._cnx.info.transaction_status == TRANSACTION_STATUS_IDLE:
                # Fresh transaction: read committed, so that once the per-customer lock is ours,
                # we see what the previous holder committed (repeatable read would not).
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try:
                with cr.savepoint():
                    # an event waiting for its statuses' messages was otherwise applied already
                    notes, outcome = event._apply(json.loads(event.payload), statuses_only=bool(event.processed_at))
            except Exception as error:
                _logger.warning("WhatsApp webhook event %s failed: %s", event.id, error, exc_info=True)
                attempts = event.attempts + 1
                event.write(
                    {
                        "state": "failed",
                        "error": f"{type(error).__name__}: {error}",
                        "attempts": attempts,
                        "next_attempt_at": fields.Datetime.now() + _backoff(attempts)
                        if attempts < MAX_ATTEMPTS
                        else False,
                    }
                )
                event._schedule_retry()
                continue
            values = {"error": "\n".join(notes) or False, "processed_at": fields.Datetime.now()}
            if outcome == "wait" and event.attempts < STATUS_WAIT_ATTEMPTS:
                values.update(
                    state="pending",
                    attempts=event.attempts + 1,
                    next_attempt_at=fields.Datetime.now() + _backoff(event.attempts + 1),
                )
            else:
                values.update(state="ignored" if outcome != "done" else "done", next_attempt_at=False)
            event.write(values)
            event._schedule_retry()

    def _schedule_retry(self):
        """Wake the retry cron when this event's next attempt is due."""
        if self.next_attempt_at:
            self.env.ref("whatsapp_crm.ir_cron_whatsapp_webhook_retry")._trigger(at=self.next_attempt_at)

    def _apply(self, payload, statuses_only=False):
        """Apply a payload; return ``(notes, outcome)``: what was not applied, and
        ``done``, ``ignored`` (nothing applicable) or ``wait`` (statuses of messages not
        stored yet: worth a later retry)."""
        self.ensure_one()
        accounts = self._signed_accounts(self._payload_accounts(payload))
        self._lock_customers(payload, accounts)
        notes, wait, applied = [], False, False
        for waba_id, field, value in wp.iter_changes(payload):
            if statuses_only:
                if field != "messages":
                    continue
                value = {"statuses": value.get("statuses") or [], "metadata": value.get("metadata")}
            account = self._change_account(accounts, waba_id, value)
            handler = getattr(self, f"_apply_{field}") if field in HANDLED_FIELDS else None
            if not account or not handler:
                notes.append(
                    _("Field %(field)s ignored: no handler.", field=field)
                    if account
                    else _("Field %(field)s ignored: no account for it.", field=field)
                )
                continue
            change_notes, change_wait = handler(account, value)
            notes += change_notes
            wait = wait or change_wait
            applied = True
        if wait:
            return notes, "wait"
        return notes, "done" if applied else "ignored"

    def _payload_accounts(self, payload):
        phone_ids, waba_ids = wp.account_keys(payload)
        return self.env["crm.whatsapp.account"].search(
            ["|", ("phone_number_id", "in", list(phone_ids)), ("waba_id", "in", list(waba_ids))]
        )

    def _signed_accounts(self, accounts):
        """The accounts the delivery's signature vouches for: the event's account and those sharing
        its app secret (one Meta app). A payload signed with one app's secret never writes into
        an account of another app, whatever numbers it names."""
        signer = self.account_id
        secret = signer.sudo().app_secret
        return accounts.filtered(lambda a: a == signer or (secret and a.sudo().app_secret == secret))

    def _change_account(self, accounts, waba_id, value):
        phone_id = wp.metadata(value).get("phone_number_id")
        if phone_id:
            return accounts.filtered(lambda a: a.phone_number_id == str(phone_id))[:1]
        same_waba = accounts.filtered(lambda a: a.waba_id == str(waba_id))
        display = "".join(filter(str.isdigit, str(value.get("display_phone_number") or "")))
        if display and len(same_waba) > 1:
            same_waba = (
                same_waba.filtered(lambda a: "".join(filter(str.isdigit, a.display_phone_number or "")) == display)
                or same_waba
            )
        return same_waba[:1]

    def _lock_customers(self, payload, accounts):
        """Serialize the processing of one customer's messages across transactions. The key is the
        customer alone, not the account: the contact is shared by every account, and two numbers
        of ours receiving the same customer at once must not create two contacts."""
        keys = set()
        for waba_id, field, value in wp.iter_changes(payload):
            if field not in ("messages", "calls", "user_preferences"):
                continue
            account = self._change_account(accounts, waba_id, value)
            for item in self._customer_items(field, value):
                wa_id, user_id, _name, _username = wp.sender(item, value.get("contacts"))
                customer = min(wa_id_variants(wa_id)) if wa_id else user_id
                if account and customer:
                    keys.add(f"whatsapp_crm:{customer}")
        for key in sorted(keys):
            self.env.cr.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])

    @staticmethod
    def _customer_items(field, value):
        """The items of a change that find or create a customer, each with the customer in ``from``
        as the handlers read them: a business-initiated call is *to* the customer, a preference
        names them in ``wa_id``."""
        items = [item for item in value.get(field) or [] if isinstance(item, dict)]
        if field == "calls":
            return [
                {
                    "from": call.get("from")
                    if call.get("direction", "USER_INITIATED") == "USER_INITIATED"
                    else call.get("to")
                }
                for call in items
            ]
        if field == "user_preferences":
            return [{**item, "from": item.get("wa_id")} if item.get("wa_id") else item for item in items]
        return items

    # ------------------------------------------------------------
    # field = messages
    # ------------------------------------------------------------

    def _apply_messages(self, account, value):
        notes, wait = [], False
        contacts = value.get("contacts") or []
        for message in value.get("messages") or []:
            wa_id, user_id, _name, _username = wp.sender(message, contacts)
            if not (wa_id or user_id):
                # nobody to file it under: retrying would fail the same way
                notes.append(_("Message %s ignored: no sender.", message.get("id")))
                continue
            self._apply_inbound_message(account, message, contacts)
        for status in value.get("statuses") or []:
            if not self._apply_status(account, status):
                notes.append(
                    _(
                        "Status %(status)s for unknown message %(wamid)s.",
                        status=status.get("status"),
                        wamid=status.get("id"),
                    )
                )
                wait = True
        for error in value.get("errors") or []:
            account.message_post(body=_("WhatsApp reported an error: %s", wp.errors_text([error])))
        return notes, wait

    def _apply_inbound_message(self, account, message, contacts):
        """Store one customer message (once per wamid) with its conversation, contact, lead and chatter post."""
        Message = self.env["crm.whatsapp.message"]
        wamid = message.get("id")
        if not wamid or Message.search_count([("account_id", "=", account.id), ("wamid", "=", wamid)], limit=1):
            return Message
        wa_id, user_id, profile_name, _username = wp.sender(message, contacts)
        kind = message.get("type") or "unsupported"
        if kind not in dict(Message._fields["message_type"].selection):
            kind = "unsupported"
        content = message.get(kind) if isinstance(message.get(kind), dict) else {}
        when = wp.to_datetime(message.get("timestamp")) or fields.Datetime.now()

        Conversation = self.env["crm.whatsapp.conversation"]
        conversation = Conversation._find(account, wa_id, user_id)
        is_new = not conversation or conversation.state == "closed"
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

        # reactions, edits and revokes name their original message; replies quote one
        context = message.get("context") or {}
        original_wamid = wp.original_wamid(message)
        reply_wamid = context.get("id") or (original_wamid if kind in ("edit", "revoke") else None)
        wamids = list({original_wamid, reply_wamid} - {None})
        related = (
            {m.wamid: m for m in Message.search([("account_id", "=", account.id), ("wamid", "in", wamids)])}
            if wamids
            else {}
        )
        original = related.get(original_wamid, Message)
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
            "reply_to_id": related.get(reply_wamid, Message).id,
            "reaction_to_id": original.id if kind == "reaction" else False,
            "forwarded": bool(context.get("forwarded") or context.get("frequently_forwarded")),
            "referral_data": referral or False,
            "payload": message,
        }
        if kind in MEDIA_TYPES and content.get("id"):
            values.update(
                media_id=content["id"],
                media_mimetype=content.get("mime_type"),
                media_filename=wp.media_filename(kind, content),
                media_state="pending",
            )
        if message.get("errors"):
            first = message["errors"][0]
            values.update(error_code=first.get("code"), error_message=wp.errors_text(message["errors"]))
        record = Message.create(values)
        if kind == "system" and content.get("type") == "user_changed_number" and content.get("wa_id"):
            self._apply_number_change(conversation, content["wa_id"])
        if original and kind in ("edit", "revoke"):
            mark = _("(deleted by the customer)") if kind == "revoke" else _("(edited: %s)", values["body"])
            flag = "revoked" if kind == "revoke" else "edited"
            original.write({"body": f"{original.body or ''}\n{mark}".strip(), flag: True})
        record.mail_message_id = self._post_inbound(record, conversation, lead, original).id
        if values.get("media_state") == "pending":
            self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media")._trigger()
        return record

    def _apply_number_change(self, conversation, new_wa_id):
        """The customer moved to another number: follow them, unless that number has its own chat."""
        Conversation = self.env["crm.whatsapp.conversation"]
        if Conversation._find(conversation.account_id, new_wa_id):
            return
        conversation.wa_id = new_wa_id
        if conversation.partner_id:
            conversation.partner_id.mobile = f"+{new_wa_id}"

    def _post_inbound(self, record, conversation, lead, original):
        """Post the message as the customer in the lead's chatter, else the contact's."""
        thread = lead or conversation.partner_id
        if not thread:
            return self.env["mail.message"]
        text = record.body or ""
        if record.message_type == "reaction":
            text = _(
                "Reacted %(emoji)s to: %(text)s",
                emoji=text,
                text=original.body or wp.original_wamid(record.payload) or "-",
            )
        elif record.message_type == "edit":
            text = _("Edited a message: %s", text)
        if record.reply_to_id and record.message_type not in ("edit", "revoke"):
            text = _('In reply to "%(quoted)s": %(text)s', quoted=record.reply_to_id.body or "", text=text)
        if record.forwarded:
            text = _("Forwarded: %s", text)
        # e-mail notifications go through the mail queue: no SMTP in the webhook's path
        return thread.with_context(mail_create_nosubscribe=True, mail_notify_force_send=False).message_post(
            author_id=conversation.partner_id.id,
            body=plaintext2html(text),
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )

    def _apply_status(self, account, status):
        """Move an outbound message forward; return False if the message is unknown."""
        wamid = status.get("id")
        if not wamid or not isinstance(wamid, str):
            return False  # ("wamid", "=", None) would match the queued messages, which have no wamid yet
        Message = self.env["crm.whatsapp.message"]
        message = Message.search(
            [("account_id", "=", account.id), ("wamid", "=", wamid), ("direction", "=", "outbound")],
            limit=1,
        ) or Message._whatsapp_adopt_status(account, status)
        if not message:
            return False
        new, current = status.get("status"), message.state
        values = {}
        if new in MESSAGE_STATUSES and self._status_moves(current, new):
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

    # ------------------------------------------------------------
    # Other fields
    # ------------------------------------------------------------

    def _find_template(self, account, value):
        Template = self.env["crm.whatsapp.template"].with_context(active_test=False)
        template_id = value.get("message_template_id")
        template = Template.browse()
        if template_id:
            template = Template.search(
                [("account_id.waba_id", "=", account.waba_id), ("wa_template_id", "=", str(template_id))], limit=1
            )
        if not template and value.get("message_template_name"):
            template = Template.search(
                [
                    ("account_id.waba_id", "=", account.waba_id),
                    ("name", "=", value["message_template_name"]),
                    ("language", "=", value.get("message_template_language")),
                ],
                limit=1,
            )
        return template

    def _apply_message_template_status_update(self, account, value):
        template = self._find_template(account, value)
        event = value.get("event")
        if not template:
            return [
                _(
                    "Template %s is not known here.",
                    value.get("message_template_name") or value.get("message_template_id"),
                )
            ], False
        status = TEMPLATE_STATUSES.get(event)
        values = {"status": status} if status else {}
        if value.get("message_template_id") and not template.wa_template_id:
            values["wa_template_id"] = str(value["message_template_id"])
        if values:
            template.write(values)
        reason = value.get("reason") if value.get("reason") not in (None, "NONE") else ""
        account.message_post(
            body=_(
                "Template %(template)s: %(event)s %(reason)s",
                template=template.display_name,
                event=event,
                reason=reason or "",
            )
        )
        return ([] if status else [_("Template event %s recorded only.", event)]), False

    def _apply_message_template_quality_update(self, account, value):
        template = self._find_template(account, value)
        account.message_post(
            body=_(
                "Template %(template)s quality: %(old)s → %(new)s",
                template=template.display_name or value.get("message_template_name"),
                old=value.get("previous_quality_score"),
                new=value.get("new_quality_score"),
            )
        )
        return [], False

    def _apply_template_category_update(self, account, value):
        template = self._find_template(account, value)
        category = (value.get("new_category") or value.get("correct_category") or "").lower()
        if template and category in dict(template._fields["category"].selection):
            template.category = category
        account.message_post(
            body=_(
                "Template %(template)s category: %(old)s → %(new)s",
                template=template.display_name or value.get("message_template_name"),
                old=value.get("previous_category"),
                new=category,
            )
        )
        return [], False

    def _apply_phone_number_quality_update(self, account, value):
        values = {}
        if value.get("current_limit"):
            values["messaging_limit_tier"] = value["current_limit"]
        if value.get("quality_rating") or value.get("new_quality_score"):
            values["quality_rating"] = value.get("quality_rating") or value.get("new_quality_score")
        if values:
            account.write(values)
        account.message_post(
            body=_(
                "Phone number quality update: %(event)s, messaging limit %(limit)s",
                event=value.get("event"),
                limit=value.get("current_limit") or "-",
            )
        )
        return [], False

    def _apply_account_update(self, account, value):
        details = {k: v for k, v in value.items() if k not in ("event", "messaging_product")}
        account.message_post(
            body=_(
                "WhatsApp account update: %(event)s %(details)s", event=value.get("event"), details=json.dumps(details)
            )
        )
        return [], False

    def _apply_user_preferences(self, account, value):
        notes, contacts = [], value.get("contacts") or []
        for preference in value.get("user_preferences") or []:
            wa_id, user_id, profile_name, _username = wp.sender(preference, contacts)
            if not wa_id:
                wa_id = preference.get("wa_id")
            conversation = self.env["crm.whatsapp.conversation"]._find_or_create(account, wa_id, user_id, profile_name)
            if not conversation:
                notes.append(_("Preference %s ignored: no customer.", preference.get("category")))
                continue
            body = _(
                "WhatsApp preference: %(category)s → %(value)s %(detail)s",
                category=preference.get("category"),
                value=preference.get("value"),
                detail=preference.get("detail") or "",
            )
            conversation.message_post(body=body)
            conversation.partner_id.message_post(body=body)
        return notes, False

    def _apply_calls(self, account, value):
        Message = self.env["crm.whatsapp.message"]
        notes, contacts = [], value.get("contacts") or []
        for call in value.get("calls") or []:
            event = call.get("event") or call.get("status")
            wamid = f"{call.get('id')}:{event}"
            if Message.search_count([("account_id", "=", account.id), ("wamid", "=", wamid)], limit=1):
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
            Message.create(
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
        return notes, False

    # ------------------------------------------------------------
    # Media
    # ------------------------------------------------------------

    @api.model
    def _cron_download_media(self, limit=50):
        """Download the pending media of inbound messages; retry with backoff, then give up."""
        now = fields.Datetime.now()
        messages = self.env["crm.whatsapp.message"].search(
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
        for message in messages:
            self._download_media(message)
            if _auto_commit():  # keep each download done
                self.env.cr.commit()  # pylint: disable=invalid-commit
        if len(messages) == limit:
            self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media")._trigger()

    def _download_media(self, message):
        try:
            api_client = message.account_id._get_api()
            info = api_client.get_media_info(message.media_id)
            content = api_client.download_media(info["url"])
            if not isinstance(content, bytes) or not content:
                raise ValueError("empty or invalid media content")
        except (WhatsAppApiError, UserError, KeyError, TypeError, ValueError) as error:
            # a UserError (account without access token) must not stop the cron for every other message
            attempts = message.media_attempts + 1
            if isinstance(error, WhatsAppApiError):
                reason = f"[{error.code}] {error.details or error.title}"
            else:
                reason = error.args[0] if isinstance(error, UserError) else repr(error)
            _logger.info("WhatsApp media of message %s not downloaded (attempt %s): %s", message.id, attempts, reason)
            message.write(
                {
                    "media_attempts": attempts,
                    "media_state": "missing" if attempts >= MEDIA_MAX_ATTEMPTS else "pending",
                    "next_try_at": fields.Datetime.now() + _backoff(attempts),
                    "error_message": _("Media download failed: %s", reason),
                }
            )
            if message.media_state == "pending":
                self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media")._trigger(at=message.next_try_at)
            return False
        mimetype = (info.get("mime_type") or message.media_mimetype or "application/octet-stream").split(";")[0]
        attachment = self.env["ir.attachment"].create(
            {
                "name": message.media_filename
                or wp.media_filename(message.message_type, {"id": message.media_id}, mimetype),
                "raw": content,
                "mimetype": mimetype,
                "res_model": "crm.whatsapp.message",
                "res_id": message.id,
            }
        )
        message.write(
            {
                "attachment_ids": [(4, attachment.id)],
                "media_state": "done",
                "media_mimetype": mimetype,
                "media_attempts": message.media_attempts + 1,
                "next_try_at": False,
            }
        )
        if message.mail_message_id:
            message.mail_message_id.attachment_ids = [(4, attachment.id)]
        return attachment
