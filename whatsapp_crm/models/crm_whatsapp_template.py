import re

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import html_escape

from ..tools import whatsapp_template as wt

TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
RENDER_SEPARATOR = "\x1e"  # between the variables of one rendering; never in a field's text

STATUS_SELECTION = [
    ("draft", "Draft"),
    ("pending", "Pending"),
    ("in_appeal", "In Appeal"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("flagged", "Flagged"),
    ("paused", "Paused"),
    ("disabled", "Disabled"),
    ("limit_exceeded", "Limit Exceeded"),
    ("pending_deletion", "Pending Deletion"),
    ("deleted", "Deleted"),
    ("archived", "Archived"),
]


class CrmWhatsappTemplate(models.Model):
    _name = "crm.whatsapp.template"
    _description = "WhatsApp Message Template"
    _inherit = ["mail.thread", "mail.render.mixin"]
    _order = "name, language"
    # Variables are rendered from field paths checked against the model (see
    # crm.whatsapp.template.variable._expression), never from free expressions.
    _unrestricted_rendering = True

    name = fields.Char(required=True, help="Meta's template name: lowercase letters, digits and underscores.")
    language = fields.Char("Language Code", required=True, default="en_US", help="Meta's language code, e.g. en_US.")
    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    wa_template_id = fields.Char("Meta Template ID", readonly=True, copy=False)
    category = fields.Selection(
        [("marketing", "Marketing"), ("utility", "Utility"), ("authentication", "Authentication")],
        default="utility",
        required=True,
        tracking=True,
    )
    status = fields.Selection(STATUS_SELECTION, default="draft", required=True, tracking=True, copy=False)
    rejection_reason = fields.Char(readonly=True, copy=False, help="Why Meta rejected, paused or disabled it.")
    quality_score = fields.Selection(
        [("unknown", "Unknown"), ("green", "High"), ("yellow", "Medium"), ("red", "Low")],
        default="unknown",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    parameter_format = fields.Selection(
        [("positional", "Positional: {{1}}, {{2}}"), ("named", "Named: {{first_name}}")],
        default="positional",
        required=True,
    )
    header_type = fields.Selection(
        [
            ("none", "None"),
            ("text", "Text"),
            ("image", "Image"),
            ("video", "Video"),
            ("document", "Document"),
            ("location", "Location"),
        ],
        default="none",
        required=True,
    )
    header_text = fields.Char(help="At most 60 characters, with at most one variable.")
    header_file = fields.Binary("Header File", attachment=True, help="Sent as the header; also Meta's example.")
    header_filename = fields.Char()
    header_location_name = fields.Char("Location Name")
    header_location_address = fields.Char("Location Address")
    header_latitude = fields.Float("Latitude", digits=(10, 7))
    header_longitude = fields.Float("Longitude", digits=(10, 7))
    body = fields.Text(required=True, help="Body text with {{1}}, {{2}}... or {{name}} placeholders.")
    footer = fields.Char(help="At most 60 characters, no variable.")
    button_ids = fields.One2many("crm.whatsapp.template.button", "template_id", "Buttons", copy=True)
    variable_ids = fields.One2many("crm.whatsapp.template.variable", "template_id", "Variables", copy=True)
    active = fields.Boolean(default=True)
    needs_sync = fields.Boolean(
        "Re-sync Needed", readonly=True, copy=False, help="WhatsApp refused a send: read the template from Meta again."
    )
    last_sync_at = fields.Datetime("Last Synchronized", readonly=True, copy=False)
    model_id = fields.Many2one(
        "ir.model",
        "Applies To",
        ondelete="cascade",
        domain=[("is_mail_thread", "=", True), ("transient", "=", False)],
        help="Documents whose fields fill the variables; empty: any document.",
    )
    model = fields.Char(related="model_id.model")
    preview_record = fields.Reference(
        selection="_selection_preview_record",
        compute="_compute_preview_record",
        readonly=False,
        string="Preview For",
        help="The record whose values fill the preview.",
    )
    preview_html = fields.Html("Preview", compute="_compute_preview_html", sanitize=False)

    _sql_constraints = [
        ("name_language_account_unique", "unique(account_id, name, language)", "This template already exists."),
    ]

    @api.depends("name", "language")
    def _compute_display_name(self):
        for template in self:
            template.display_name = f"{template.name} [{template.language}]"

    @api.depends("model")
    def _compute_render_model(self):
        for template in self:
            template.render_model = template.model

    def _has_unsafe_expression(self):
        # the body's {{1}} are Meta's placeholders, not expressions; variables are field paths
        return False

    @api.model
    def _selection_preview_record(self):
        return [
            (model.model, model.name)
            for model in self.env["ir.model"].sudo().search([("model", "in", ["crm.lead", "res.partner"])])
        ]

    @api.depends("model_id")
    def _compute_preview_record(self):
        for template in self:
            model = template.model if template.model in ("crm.lead", "res.partner") else "res.partner"
            record = template.preview_record
            if not record or record._name != model:
                record = self.env[model].search([], limit=1)
            template.preview_record = f"{model},{record.id}" if record else False

    @api.depends(
        "preview_record",
        "header_type",
        "header_text",
        "header_filename",
        "body",
        "footer",
        "button_ids",
        "variable_ids",
    )
    def _compute_preview_html(self):
        for template in self:
            record = template.preview_record
            try:
                values = template._render_values(record) if record else {}
            except UserError as error:
                template.preview_html = Markup("<p class='text-danger'>%s</p>") % error.args[0]
                continue
            template.preview_html = template._preview_html(values)

    def copy(self, default=None):
        """The copies' button variables complete the copies' buttons."""
        copies = super().copy(default)
        for original, template in zip(self, copies, strict=True):
            buttons = dict(zip(original.button_ids, template.button_ids, strict=True))
            for variable in template.variable_ids:
                if variable.button_id in buttons:
                    variable.button_id = buttons[variable.button_id]
        return copies

    @api.constrains("name", "header_type", "header_text", "body", "footer", "button_ids", "parameter_format")
    def _check_meta_rules(self):
        for template in self:
            if not TEMPLATE_NAME.match(template.name or ""):
                raise ValidationError(
                    _("The template name %s may only hold lowercase letters, digits and underscores.", template.name)
                )
            if template.header_type == "text" and len(wt.placeholders(template.header_text)) > 1:
                raise ValidationError(_("A text header has at most one variable."))
            if template.footer and wt.placeholders(template.footer):
                raise ValidationError(_("The footer cannot hold a variable."))
            names = wt.placeholders(template.body) + wt.placeholders(template.header_text)
            positional = all(name.isdigit() for name in names)
            if names and positional != (template.parameter_format == "positional"):
                raise ValidationError(
                    _("The variables of %s do not match its parameter format.", template.display_name)
                )
            if len(template.button_ids) > 10:
                raise ValidationError(_("A template has at most 10 buttons."))

    # ------------------------------------------------------------------
    # Variables and rendering
    # ------------------------------------------------------------------

    def _placeholders(self):
        """Keys of every value a message of this template needs (see ``variable_key``)."""
        self.ensure_one()
        keys = [wt.variable_key("body", name) for name in wt.placeholders(self.body)]
        if self.header_type == "text":
            keys += [wt.variable_key("header", name) for name in wt.placeholders(self.header_text)]
        for index, button in enumerate(self.button_ids):
            if button.button_type == "url":
                keys += [wt.variable_key("button", name, index) for name in wt.placeholders(button.url)[:1]]
        return keys

    def _variables_by_key(self):
        self.ensure_one()
        return {variable.key: variable for variable in self.variable_ids}

    def _render_values_batch(self, records, errors=None):
        """``{record id: {key: text}}`` for every placeholder, rendered for all ``records`` at once
        through ``mail.render.mixin`` (one rendering of all the field variables, read in batch).

        :param errors: a dict: a record lacking a value is left out, with its reason in ``errors``
            (by record id), instead of raising
        :raises UserError: a placeholder without a value (no variable, empty field and no fallback)
        """
        self.ensure_one()
        keys = self._placeholders()
        variables = self._variables_by_key()
        field_variables = [variables[key] for key in keys if key in variables and variables[key]._is_field()]
        rendered = dict.fromkeys(records.ids, [""] * len(field_variables))
        if field_variables and records:
            source = RENDER_SEPARATOR.join(variable._expression(records._name) for variable in field_variables)
            rendered = {
                res_id: text.split(RENDER_SEPARATOR)
                for res_id, text in self._render_template(source, records._name, records.ids).items()
            }
        result = {}
        for record in records:
            raw = dict(zip((v.key for v in field_variables), rendered.get(record.id) or [], strict=False))
            values = {}
            for key in keys:
                variable = variables.get(key)
                value = variable._finish(raw.get(key), records._name) if variable else ""
                if not value:
                    reason = _(
                        "The variable {{%(placeholder)s}} of template %(template)s has no value for %(record)s.",
                        placeholder=key,
                        template=self.display_name,
                        record=record.display_name,
                    )
                    if errors is None:
                        raise UserError(reason)
                    errors[record.id] = reason
                    break
                values[key] = value
            else:
                result[record.id] = values
        return result

    def _render_values(self, record):
        """``{key: text}`` for every placeholder, filled from ``record``."""
        self.ensure_one()
        return self._render_values_batch(record)[record.id] if record else {}

    def _render_body(self, values):
        """The body as the customer reads it."""
        self.ensure_one()
        return wt.fill(self.body, values)

    def _render_parts(self, values):
        """``{header, body, footer, buttons: [text]}`` as the customer sees them."""
        self.ensure_one()
        header = False
        if self.header_type == "text":
            header = wt.fill(self.header_text, values, "header")
        elif self.header_type in wt.HEADER_MEDIA:
            header = f"[{self.header_filename or self.header_type}]"
        elif self.header_type == "location":
            header = f"[{self.header_location_name or _('Location')}]"
        buttons = []
        for index, button in enumerate(self.button_ids):
            label = button.text or _("Copy offer code")
            if button.button_type == "url":
                label = f"{label} ({wt.fill(button.url, values, 'button', index)})"
            elif button.button_type == "phone_number":
                label = f"{label} ({button.phone_number})"
            buttons.append(label)
        return {"header": header, "body": self._render_body(values), "footer": self.footer or False, "buttons": buttons}

    def _render_text(self, values):
        """Header, body, footer and buttons as plain text (chatter, previews)."""
        parts = self._render_parts(values)
        lines = [parts["header"], parts["body"], parts["footer"]]
        if parts["buttons"]:
            lines.append(" | ".join(f"[{label}]" for label in parts["buttons"]))
        return "\n".join(line for line in lines if line)

    def _preview_html(self, values):
        self.ensure_one()
        parts = self._render_parts(values)
        html = Markup()
        if parts["header"]:
            html += Markup("<p class='fw-bold mb-1'>%s</p>") % parts["header"]
        html += Markup("<p class='mb-1'>%s</p>") % Markup("<br/>").join(
            html_escape(line) for line in parts["body"].split("\n")
        )
        if parts["footer"]:
            html += Markup("<p class='small text-muted mb-1'>%s</p>") % parts["footer"]
        for label in parts["buttons"]:
            html += Markup("<div class='border-top text-center text-primary py-1'>%s</div>") % label
        return Markup("<div class='o_whatsapp_crm_template_preview border rounded p-2'>%s</div>") % html

    # ------------------------------------------------------------------
    # Payloads
    # ------------------------------------------------------------------

    def _as_dict(self):
        """The template as :mod:`..tools.whatsapp_template` reads it."""
        self.ensure_one()
        return {
            "parameter_format": self.parameter_format,
            "header_type": self.header_type,
            "header_text": self.header_text or "",
            "body": self.body or "",
            "footer": self.footer or "",
            "buttons": [button._as_dict() for button in self.button_ids],
        }

    def _header_media(self):
        """``{"link": url}`` of the header file, readable by Meta through the attachment's token."""
        self.ensure_one()
        if self.header_type not in wt.HEADER_MEDIA:
            return None
        attachment = self._header_attachment()
        if not attachment:
            return None
        token = attachment.generate_access_token()[0]
        media = {"link": f"{self.get_base_url()}/web/content/{attachment.id}?access_token={token}"}
        if self.header_type == "document" and self.header_filename:
            media["filename"] = self.header_filename
        return media

    def _header_attachment(self):
        self.ensure_one()
        return (
            self.env["ir.attachment"]
            .sudo()
            .search(
                [("res_model", "=", self._name), ("res_id", "=", self.id), ("res_field", "=", "header_file")], limit=1
            )
        )

    def _header_location(self):
        self.ensure_one()
        if self.header_type != "location":
            return None
        return {
            "latitude": self.header_latitude,
            "longitude": self.header_longitude,
            "name": self.header_location_name or "",
            "address": self.header_location_address or "",
        }

    def _prepare_payload(self, values):
        """The ``template`` object of a send request (Meta's shape)."""
        self.ensure_one()
        payload = {"name": self.name, "language": {"code": self.language}}
        components = wt.send_components(
            self._as_dict(), values, header_media=self._header_media(), location=self._header_location()
        )
        if components:
            payload["components"] = components
        return payload

    def _is_sendable(self):
        """Approved and active: the only templates offered and sent."""
        self.ensure_one()
        return self.active and self.status == "approved"

    @api.model
    def _sendable_domain(self):
        return [("status", "=", "approved"), ("active", "=", True)]
