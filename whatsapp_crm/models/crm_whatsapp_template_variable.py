from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.models import BaseModel


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

    def _value_for(self, record):
        """Text of this variable for ``record``: its field path, else the default value."""
        self.ensure_one()
        value = record
        for name in self.field_path.split(".") if self.field_path else []:
            if not isinstance(value, BaseModel) or name not in value._fields:
                raise UserError(
                    _("The field %(path)s does not exist on %(model)s.", path=self.field_path, model=record._name)
                )
            value = value[:1][name]
        if isinstance(value, BaseModel):  # the record itself or a relation: its name
            value = "" if value is record else ", ".join(value.mapped("display_name"))
        if value is False or value is None or value == "":
            return self.default_value or ""
        return str(value)
