"""Routing of a stored delivery: each change to the model owning its field, each item in its own
savepoint when the batch is applied again item by item, and the accounts a delivery may write
into (see crm_whatsapp_webhook_event.py)."""

import logging

import psycopg2

from odoo import _, api, models

from ..tools import webhook_payload as wp
from . import crm_whatsapp_webhook_event as event_module
from .crm_whatsapp_webhook_event import CONCURRENCY_ERRORS, lane_of, lane_of_key

_logger = logging.getLogger(event_module.__name__)  # one log for the whole pipeline

# Webhook field: the model that applies it, with ``_whatsapp_webhook_<field>(account, value)``
# returning ``(notes, wait)`` or ``(notes, wait, received)``: what was not applied, whether a
# retry may apply it later, and the inbound messages stored (for the inbound hook).
# The value a handler receives holds one item of the change (one message, one status...).
FIELD_MODELS = {
    "messages": "crm.whatsapp.message",
    "smb_message_echoes": "crm.whatsapp.message",
    "calls": "crm.whatsapp.message",
    "user_preferences": "crm.whatsapp.conversation",
    "smb_app_state_sync": "crm.whatsapp.conversation",
    "message_template_status_update": "crm.whatsapp.template",
    "message_template_quality_update": "crm.whatsapp.template",
    "template_category_update": "crm.whatsapp.template",
    "phone_number_quality_update": "crm.whatsapp.account",
    "account_update": "crm.whatsapp.account",
}
# Expected data problems: the item is noted and ignored, as retrying cannot fix it.
DATA_ERRORS = (wp.MalformedPart, psycopg2.DataError)


class CrmWhatsappWebhookEvent(models.Model):
    _inherit = "crm.whatsapp.webhook.event"

    def _apply(self, payload, statuses_only=False, isolated=True):
        """Apply a payload, each change by the model that owns its field (:data:`FIELD_MODELS`),
        each item of a change (a message, a status...) in its own savepoint when ``isolated``;
        otherwise without savepoints, the first failing item raising (see ``_process``).

        :return: ``(notes, outcome, received, bugs)``: what was not applied; ``done``,
            ``ignored`` (nothing applicable) or ``wait`` (statuses of messages not stored yet:
            worth a later retry); the inbound messages stored; the exceptions of items that
            hit a bug (the event is retried for them)
        """
        self.ensure_one()
        accounts = self._signed_accounts(self._payload_accounts(payload))
        notes, wait, applied, bugs = [], False, False, []
        received = self.env["crm.whatsapp.message"]
        for waba_id, field, value in wp.iter_changes(payload):
            if statuses_only:
                if field != "messages":
                    continue
                value = {"statuses": value.get("statuses") or [], "metadata": value.get("metadata")}
            account = self._change_account(accounts, waba_id, value)
            model = FIELD_MODELS.get(field)
            if not account or not model or not account.active:
                notes.append(
                    _("Field %(field)s ignored: no handler.", field=wp.loggable(field))
                    if account and not model
                    else _(
                        "Field %(field)s ignored: the account %(account)s is archived.",
                        field=field,
                        account=account.name,
                    )
                    if account
                    else _("Field %(field)s ignored: no account for it.", field=wp.loggable(field))
                )
                continue
            handler = getattr(self.env[model], f"_whatsapp_webhook_{field}")
            for label, item in wp.split_change(value):
                if self.split and not isinstance(item, wp.MalformedPart) and not self._in_lane(payload, item):
                    continue  # another lane's copy of the delivery applies it
                if not isolated:
                    if isinstance(item, wp.MalformedPart):
                        raise item
                    result = handler(account, item)
                else:
                    result = self._apply_item_isolated(handler, account, label, item, notes, bugs)
                    if result is None:
                        continue
                item_notes, item_wait, *stored = result
                notes += item_notes
                wait = wait or item_wait
                applied = True
                if stored:
                    received |= stored[0]
        if wait:
            return notes, "wait", received, bugs
        return notes, "done" if applied else "ignored", received, bugs

    def _apply_item_isolated(self, handler, account, label, item, notes, bugs):
        """The handler's result for ``item``, applied in its own savepoint; None when it was not
        applied: a data problem (noted in ``notes``) or a bug (added to ``bugs``, logged)."""
        try:
            if isinstance(item, wp.MalformedPart):
                raise item
            with self.env.cr.savepoint():
                return handler(account, item)
        except CONCURRENCY_ERRORS:
            raise
        except DATA_ERRORS as error:
            note = _("%(part)s ignored: %(reason)s", part=label, reason=wp.loggable(error, 200))
            _logger.warning("WhatsApp webhook event %s: %s", self.id, note)
            notes.append(note)
        except Exception as error:
            self._log_bug(error)
            bugs.append(error)
        return None

    def _in_lane(self, payload, item):
        """Whether this event's lane applies ``item``: its customer's lane, else the payload's own."""
        customer = wp.value_customer(item)
        return self.lane == (lane_of_key(customer) if customer else lane_of(payload))

    @api.model
    def _payload_accounts(self, payload):
        """The accounts (archived ones included) a payload names, with their app secrets, in one query."""
        phone_ids, waba_ids = wp.account_keys(payload)
        return (
            self.env["crm.whatsapp.account"]
            .with_context(active_test=False)
            .search_fetch(
                ["|", ("phone_number_id", "in", list(phone_ids)), ("waba_id", "in", list(waba_ids))],
                ["app_secret", "active", "phone_number_id", "waba_id", "name"],
            )
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
