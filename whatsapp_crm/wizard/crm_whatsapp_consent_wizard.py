from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..models.crm_whatsapp_consent import SCOPES, STATES


class CrmWhatsappConsentWizard(models.TransientModel):
    _name = "crm.whatsapp.consent.wizard"
    _description = "Record a WhatsApp Consent"

    partner_id = fields.Many2one("res.partner", "Contact", required=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    number = fields.Char(compute="_compute_number", store=True, readonly=False, help="International format (+...).")
    scope = fields.Selection(SCOPES, required=True, default="marketing")
    state = fields.Selection(STATES, required=True, default="opt_in")
    source = fields.Selection(
        [("manual", "Manual, with Proof"), ("web_form", "Web Form")], required=True, default="manual"
    )
    proof = fields.Text(required=True, help="e.g. Signed form of 12 March at the fair; the e-mail in which...")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if not values.get("partner_id") and context.get("active_model") == "crm.lead" and context.get("active_id"):
            values["partner_id"] = self.env["crm.lead"].browse(context["active_id"]).partner_id.id
        elif not values.get("partner_id") and context.get("active_model") == "res.partner":
            values["partner_id"] = context.get("active_id")
        return values

    @api.depends("partner_id")
    def _compute_number(self):
        for wizard in self:
            partner = wizard.partner_id
            wizard.number = partner._phone_format(fname="mobile") or partner._phone_format(fname="phone") or False

    def action_record(self):
        self.ensure_one()
        self.partner_id.check_access("read")
        if self.company_id not in self.env.user.company_ids:
            raise AccessError(_("You can only record consents in your own companies."))
        conversation = self.partner_id.whatsapp_conversation_ids.filtered(lambda c: not c.wa_id)[:1]
        if not self.number and not conversation.wa_user_id:
            raise UserError(_("%s has no number to record a consent for.", self.partner_id.display_name))
        if not (self.proof or "").strip():
            raise UserError(_("A consent recorded by hand needs its proof."))
        self.env["crm.whatsapp.consent"]._whatsapp_record(
            [
                {
                    "company": self.company_id,
                    "number": self.number or False,
                    "wa_user_id": conversation.wa_user_id if not self.number else False,
                    "partner": self.partner_id,
                    "scope": self.scope,
                    "state": self.state,
                    "source": self.source,
                    "proof": self.proof,
                }
            ]
        )
        return {"type": "ir.actions.act_window_close"}
