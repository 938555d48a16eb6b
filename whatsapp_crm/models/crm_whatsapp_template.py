import re

from odoo import api, fields, models

PLACEHOLDER = re.compile(r"{{\s*([\w.]+)\s*}}")


class CrmWhatsappTemplate(models.Model):
    _name = "crm.whatsapp.template"
    _description = "WhatsApp Message Template"
    _order = "name, language"

    name = fields.Char(required=True, help="Meta's template name: lowercase letters, digits and underscores.")
    language = fields.Char(required=True, default="en_US")
    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    wa_template_id = fields.Char("Meta Template ID", readonly=True)
    category = fields.Selection(
        [("marketing", "Marketing"), ("utility", "Utility"), ("authentication", "Authentication")],
        default="utility",
        required=True,
    )
    status = fields.Selection(
        [
            ("draft", "Draft"),
            ("pending", "Pending"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("paused", "Paused"),
            ("disabled", "Disabled"),
        ],
        default="draft",
        required=True,
    )
    body = fields.Text(required=True, help="Body text with {{1}}, {{2}}... placeholders.")
    variable_ids = fields.One2many("crm.whatsapp.template.variable", "template_id", "Variables")
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("name_language_account_unique", "unique(account_id, name, language)", "This template already exists."),
    ]

    @api.depends("name", "language")
    def _compute_display_name(self):
        for template in self:
            template.display_name = f"{template.name} [{template.language}]"

    def _placeholders(self):
        self.ensure_one()
        return list(dict.fromkeys(PLACEHOLDER.findall(self.body or "")))
