"""Delivery statuses of outbound WhatsApp messages, as the status webhooks report them.

The state they write shows in the chatter as the note's ``mail.notification`` (see
``mail_notification.py``).
"""

from odoo import _, api, models

from ..tools import webhook_payload as wp
from .crm_whatsapp_message import STATE_RANK

WEBHOOK_STATUSES = ("sent", "delivered", "read", "played", "failed")


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

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
        ) or self._whatsapp_adopt_status(account, status)
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
