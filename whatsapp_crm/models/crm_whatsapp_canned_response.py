from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class CrmWhatsappCannedResponse(models.Model):
    _name = "crm.whatsapp.canned.response"
    _description = "WhatsApp Canned Response"
    _order = "shortcut, id"
    _rec_name = "shortcut"

    shortcut = fields.Char(
        required=True, help="Typed after a slash in the reply box: /price finds the response of shortcut price."
    )
    body = fields.Text("Response", required=True, translate=True)
    scope = fields.Selection(
        [("personal", "Only Me"), ("team", "My Sales Team"), ("all", "Everyone")],
        default="personal",
        required=True,
    )
    user_id = fields.Many2one("res.users", "Owner", default=lambda self: self.env.user, required=True, index=True)
    team_id = fields.Many2one("crm.team", "Sales Team", help="Who shares a team response.")
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("shortcut_no_space", "check(position(' ' in shortcut) = 0)", "A shortcut is one word, without spaces."),
    ]

    @api.constrains("scope", "team_id")
    def _check_team(self):
        for response in self:
            if response.scope == "team" and not response.team_id:
                raise ValidationError(_("Choose the sales team that shares the response %s.", response.shortcut))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("shortcut"):
                vals["shortcut"] = vals["shortcut"].strip().lstrip("/")
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("shortcut"):
            vals["shortcut"] = vals["shortcut"].strip().lstrip("/")
        return super().write(vals)

    @api.model
    def whatsapp_canned_search(self, prefix, limit=8):
        """Responses whose shortcut starts with ``prefix`` (what follows the slash), for the reply box."""
        prefix = (prefix or "").lstrip("/")
        responses = self.search([("shortcut", "=ilike", f"{prefix}%")], limit=limit)
        return [{"id": r.id, "shortcut": r.shortcut, "body": r.body} for r in responses]
