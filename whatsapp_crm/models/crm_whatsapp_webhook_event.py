"""Durable log of WhatsApp webhook deliveries and everything they become."""

import hashlib
import json
import logging
import threading
from datetime import timedelta

import psycopg2.errors
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from odoo import _, api, fields, models
from odoo.tools import mute_logger

from ..tools import webhook_payload as wp
from ..tools.phone import wa_id_variants

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # processing: retried after 1, 2, 4 ... 64 minutes, then only by hand
STATUS_WAIT_ATTEMPTS = 3  # a status may come before the send's response stored its wamid
# Webhook field: the model that applies it, with ``_whatsapp_webhook_<field>(account, value)``
# returning ``(notes, wait)`` or ``(notes, wait, received)``: what was not applied, whether a
# retry may apply it later, and the inbound messages stored (for the inbound hook).
FIELD_MODELS = {
    "messages": "crm.whatsapp.message",
    "calls": "crm.whatsapp.message",
    "user_preferences": "crm.whatsapp.conversation",
    "message_template_status_update": "crm.whatsapp.template",
    "message_template_quality_update": "crm.whatsapp.template",
    "template_category_update": "crm.whatsapp.template",
    "phone_number_quality_update": "crm.whatsapp.account",
    "account_update": "crm.whatsapp.account",
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
        """Apply the events, each in a savepoint: a failure marks the event failed for a later retry.
        Then the inbound hook, once for the messages of all of them."""
        received = self.env["crm.whatsapp.message"]
        for event in self:
            cr = self.env.cr
            if cr._cnx.info.transaction_status == TRANSACTION_STATUS_IDLE:
                # Fresh transaction: read committed, so that once the per-customer lock is ours,
                # we see what the previous holder committed (repeatable read would not).
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try:
                with cr.savepoint():
                    # an event waiting for its statuses' messages was otherwise applied already
                    notes, outcome, stored = event._apply(
                        json.loads(event.payload), statuses_only=bool(event.processed_at)
                    )
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
            received |= stored
        self._call_inbound_hook(received)

    def _call_inbound_hook(self, messages):
        """Run the inbound hook on the messages of a batch; its failure (a bug) undoes only its work."""
        if not messages:
            return
        try:
            with self.env.cr.savepoint():
                self.env["crm.whatsapp.conversation"]._whatsapp_on_inbound(messages)
        except Exception:
            _logger.exception("WhatsApp inbound hook failed on messages %s", messages.ids)

    def _schedule_retry(self):
        """Wake the retry cron when this event's next attempt is due."""
        if self.next_attempt_at:
            self.env.ref("whatsapp_crm.ir_cron_whatsapp_webhook_retry")._trigger(at=self.next_attempt_at)

    def _apply(self, payload, statuses_only=False):
        """Apply a payload, each change by the model that owns its field (:data:`FIELD_MODELS`).

        :return: ``(notes, outcome, received)``: what was not applied; ``done``, ``ignored``
            (nothing applicable) or ``wait`` (statuses of messages not stored yet: worth a later
            retry); and the inbound messages stored
        """
        self.ensure_one()
        accounts = self._signed_accounts(self._payload_accounts(payload))
        self._lock_customers(payload, accounts)
        notes, wait, applied = [], False, False
        received = self.env["crm.whatsapp.message"]
        for waba_id, field, value in wp.iter_changes(payload):
            if statuses_only:
                if field != "messages":
                    continue
                value = {"statuses": value.get("statuses") or [], "metadata": value.get("metadata")}
            account = self._change_account(accounts, waba_id, value)
            model = FIELD_MODELS.get(field)
            if not account or not model:
                notes.append(
                    _("Field %(field)s ignored: no handler.", field=field)
                    if account
                    else _("Field %(field)s ignored: no account for it.", field=field)
                )
                continue
            change_notes, change_wait, *stored = getattr(self.env[model], f"_whatsapp_webhook_{field}")(account, value)
            notes += change_notes
            wait = wait or change_wait
            applied = True
            if stored:
                received |= stored[0]
        if wait:
            return notes, "wait", received
        return notes, "done" if applied else "ignored", received

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
