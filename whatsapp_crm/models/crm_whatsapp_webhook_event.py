from odoo import fields, models


class CrmWhatsappWebhookEvent(models.Model):
    _name = "crm.whatsapp.webhook.event"
    _description = "WhatsApp Webhook Event"
    _order = "id desc"

    account_id = fields.Many2one("crm.whatsapp.account", index=True, ondelete="cascade")
    payload = fields.Text(required=True, help="The raw body as WhatsApp sent it.")
    received_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("failed", "Failed"), ("ignored", "Ignored")],
        default="pending",
        required=True,
        index=True,
    )
    error = fields.Text(readonly=True)
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    processed_at = fields.Datetime(readonly=True)
