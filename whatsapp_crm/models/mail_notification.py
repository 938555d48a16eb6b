"""Delivery statuses of WhatsApp messages as ``mail.notification`` rows, as ``sms`` does: the
chatter shows Odoo's own delivery icons and failures, the failure systray lists them, and a
failure opens its message to resend it."""

from odoo import api, fields, models

NOTIFICATION_TYPE = "whatsapp_crm"
# crm.whatsapp.message state -> mail.notification status (Odoo's icons and titles)
NOTIFICATION_STATUS = {
    "queued": "ready",  # "Ready"
    "unconfirmed": "process",  # "Processing": the send's answer was lost, its status is awaited
    "sent": "pending",  # "Sent": accepted by WhatsApp
    "delivered": "sent",  # "Delivered"
    "read": "sent",
    "played": "sent",
    "failed": "exception",
    "refused": "exception",
}
FAILURE_TYPES = {"failed": "whatsapp_crm_failed", "refused": "whatsapp_crm_refused"}


class MailNotification(models.Model):
    _inherit = "mail.notification"

    notification_type = fields.Selection(
        selection_add=[(NOTIFICATION_TYPE, "WhatsApp")], ondelete={NOTIFICATION_TYPE: "cascade"}
    )
    failure_type = fields.Selection(
        selection_add=[
            ("whatsapp_crm_failed", "WhatsApp: Not Sent or Not Delivered"),
            ("whatsapp_crm_refused", "WhatsApp: Refused Before Sending"),
        ]
    )
    whatsapp_message_id = fields.Many2one(
        "crm.whatsapp.message", "WhatsApp Message", index="btree_not_null", ondelete="cascade"
    )

    @api.model
    def _whatsapp_sync(self, messages):
        """Create or update the notification of each outbound message (one per chatter note) from
        its state; tell the web clients of the notes that changed. A few queries per batch."""
        messages = messages.filtered(lambda m: m.direction == "outbound" and m.mail_message_id)
        if not messages:
            return self.browse()
        existing = self.search(
            [("mail_message_id", "in", messages.mail_message_id.ids), ("res_partner_id", "in", messages.partner_id.ids)]
        ) | self.search([("whatsapp_message_id", "in", messages.ids)])
        by_message = {n.whatsapp_message_id.id: n for n in existing if n.whatsapp_message_id}
        by_note = {(n.mail_message_id.id, n.res_partner_id.id): n for n in existing}
        to_create, changed = [], self.env["mail.message"]
        for message in messages:
            values = {
                "notification_type": NOTIFICATION_TYPE,
                "notification_status": NOTIFICATION_STATUS.get(message.state, "ready"),
                "failure_type": FAILURE_TYPES.get(message.state, False),
                "failure_reason": message.error_message if message.state in FAILURE_TYPES else False,
                "whatsapp_message_id": message.id,
            }
            notification = by_message.get(message.id) or by_note.get(
                (message.mail_message_id.id, message.partner_id.id)
            )
            if not notification:
                to_create.append(
                    {
                        **values,
                        "mail_message_id": message.mail_message_id.id,
                        "res_partner_id": message.partner_id.id,
                        "author_id": message.mail_message_id.author_id.id,
                        "is_read": True,  # no inbox notification
                    }
                )
                changed |= message.mail_message_id
            elif (
                any(
                    notification[key] != (value or False)
                    for key, value in values.items()
                    if key != "whatsapp_message_id"
                )
                or notification.whatsapp_message_id != message
            ):
                notification.write(values)
                changed |= message.mail_message_id
        created = self.create(to_create)
        if changed:
            changed._notify_message_notification_update()
        return existing | created
