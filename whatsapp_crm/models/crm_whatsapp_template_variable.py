import re

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.whatsapp_template import variable_key

FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class CrmWhatsappTemplateVariable(models.Model):
    _name = "crm.whatsapp.template.variable"
    _description = "WhatsApp Template Variable"
    _order = "template_id, sequence, id"

    template_id = fields.Many2one("crm.whatsapp.template", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    component = fields.Selection(
        [("header", "Header"), ("body", "Body"), ("button", "Button")], required=True, default="body"
    )
    button_id = fields.Many2one(
        "crm.whatsapp.template.button",
        "Button",
        ondelete="cascade",
        domain="[('template_id', '=', template_id)]",
        help="The URL button this variable completes, or the copy-code button whose code it gives.",
    )
    placeholder = fields.Char(required=True, help="The placeholder without braces: 1, 2... or a name.")
    source = fields.Selection(
        [("field", "Field of the Record"), ("fixed", "Fixed Value")], required=True, default="field"
    )
    field_path = fields.Char(
        "Field", help="Field of the record filling the placeholder, e.g. partner_id.name or expected_revenue."
    )
    fixed_value = fields.Char(help="The same text for every message.")
    default_value = fields.Char(
        "Fallback", help="Used when the field is empty; also the example shown to Meta when submitting."
    )
    key = fields.Char(compute="_compute_key", help="Key of this variable's value in a sent message.")

    @api.depends("component", "placeholder", "button_id", "template_id.button_ids")
    def _compute_key(self):
        for variable in self:
            index = variable.button_id._index() if variable.component == "button" and variable.button_id else None
            variable.key = variable_key(variable.component, (variable.placeholder or "").strip(), index)

    @api.constrains("source", "field_path", "template_id", "component", "button_id")
    def _check_field_path(self):
        for variable in self:
            if variable.component == "button" and not variable.button_id:
                raise ValidationError(_("The button variable %s needs its button.", variable.placeholder))
            if variable.source == "field" and variable.field_path and variable.template_id.model:
                variable._path_fields(variable.template_id.model)

    def _is_field(self):
        self.ensure_one()
        return self.source == "field" and bool((self.field_path or "").strip())

    def _path_fields(self, model_name):
        """The fields the path goes through from ``model_name``; a wrong path raises."""
        self.ensure_one()
        start, path_fields = model_name, []
        for name in self.field_path.strip().split("."):
            Model = self.env[model_name]
            field = Model._fields.get(name) if FIELD_NAME.match(name) else None
            if not field or (path_fields and path_fields[-1].type not in ("many2one", "one2many", "many2many")):
                raise ValidationError(
                    _("The field %(path)s does not exist on %(model)s.", path=self.field_path, model=start)
                )
            path_fields.append(field)
            model_name = field.comodel_name or model_name
        return path_fields

    def _expression(self, model):
        """The inline template (``mail.render.mixin``) rendering this variable for a record of
        ``model``, formatted as Odoo shows the value: amounts with their currency, dates in the
        reader's language, relations by their name. Built from checked field names only."""
        self.ensure_one()
        path = self.field_path.strip()
        field = self._path_fields(model)[-1]
        value = f"object.{path}"
        if field.type == "monetary":
            parent = path.rpartition(".")[0]
            owner = self.env[field.model_name]
            currency = field.get_currency_field(owner) if hasattr(field, "get_currency_field") else field.currency_field
            currency_path = f"object.{parent}.{currency}" if parent else f"object.{currency}"
            if currency and currency in owner._fields:
                return f"{{{{ format_amount({value}, {currency_path}) if {value} else '' }}}}"
        if field.type == "date":
            return f"{{{{ format_date({value}) if {value} else '' }}}}"
        if field.type == "datetime":
            return f"{{{{ format_datetime({value}) if {value} else '' }}}}"
        if field.type == "many2one":
            return f"{{{{ {value}.display_name }}}}"
        if field.type in ("one2many", "many2many"):
            return f"{{{{ ', '.join({value}.mapped('display_name')) }}}}"
        return f"{{{{ {value} }}}}"

    def _finish(self, raw, model):
        """The rendered text of a field, a selection by its label, else the fallback."""
        self.ensure_one()
        if self.source == "fixed":
            raw = self.fixed_value or ""
        elif raw and self.field_path:
            field = self._path_fields(model)[-1]
            if field.type == "selection":
                raw = dict(field._description_selection(self.env)).get(raw, raw)
        raw = (raw or "").strip()
        return raw if raw and raw not in ("False", "None") else (self.default_value or "")
