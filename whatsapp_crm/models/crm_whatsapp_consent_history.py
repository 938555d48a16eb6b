from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .crm_whatsapp_consent import SOURCES, STATES


class CrmWhatsappConsentHistory(models.Model):
    """Append-only log of consent changes: what the customer chose, when, how we learnt it,
    who recorded it and the proof. Lines are never changed nor deleted."""

    _name = "crm.whatsapp.consent.history"
    _description = "WhatsApp Consent History"
    _order = "date desc, id desc"

    consent_id = fields.Many2one("crm.whatsapp.consent", required=True, ondelete="restrict", index=True)
    company_id = fields.Many2one(related="consent_id.company_id", store=True)
    partner_id = fields.Many2one(related="consent_id.partner_id")
    customer = fields.Char(related="consent_id.customer")
    scope = fields.Selection(related="consent_id.scope", store=True)
    state = fields.Selection(STATES, required=True, readonly=True)
    previous_state = fields.Selection(STATES, readonly=True)
    source = fields.Selection(SOURCES, required=True, readonly=True)
    proof = fields.Text(readonly=True)
    date = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    user_id = fields.Many2one("res.users", "Recorded By", readonly=True)
    message_id = fields.Many2one("crm.whatsapp.message", "Customer Message", readonly=True, ondelete="set null")

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise UserError(_("The consent history is written by the system only."))
        return super().create(vals_list)

    def write(self, vals):
        if set(vals) - {"message_id"} or not self.env.su:
            raise UserError(_("The consent history is never changed."))
        return super().write(vals)

    def unlink(self):
        if self:
            raise UserError(_("The consent history is never deleted."))
        return super().unlink()
