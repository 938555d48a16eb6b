from odoo import fields, models


class CrmWhatsappTemplateVariable(models.Model):
    _name = "crm.whatsapp.template.variable"
    _description = "WhatsApp Template Variable"
    _order = "template_id, sequence, id"

    template_id = fields.Many2one("crm.whatsapp.template", required=True, ondelete="cascade")
    sequence = fields.Integer(default=10)
    placeholder = fields.Char(required=True, help="The placeholder without braces: 1, 2... or a name.")
    field_path = fields.Char(
        "Field", help="Field of the record filling the placeholder, e.g. partner_id.name; empty: the default."
    )
    default_value = fields.Char(help="Value used when the field is empty, and as Meta's example.")
