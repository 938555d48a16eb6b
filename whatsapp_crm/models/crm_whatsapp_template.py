import re

from odoo import _, api, fields, models
from odoo.exceptions import UserError

PLACEHOLDER = re.compile(r"{{\s*([\w.]+)\s*}}")
# Meta's template events (message_template_status_update) and the status they give
TEMPLATE_STATUSES = {
    "APPROVED": "approved",
    "REINSTATED": "approved",
    "REJECTED": "rejected",
    "PENDING": "pending",
    "IN_APPEAL": "pending",
    "PAUSED": "paused",
    "DISABLED": "disabled",
    "PENDING_DELETION": "disabled",
    "DELETED": "disabled",
    "ARCHIVED": "disabled",
}


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
    model_id = fields.Many2one(
        "ir.model",
        "Applies To",
        ondelete="cascade",
        domain=[("is_mail_thread", "=", True), ("transient", "=", False)],
        help="Documents whose fields fill the variables; empty: any document.",
    )
    model = fields.Char(related="model_id.model")

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

    # Rendering: placeholder values come from the record through the variables' field paths.
    def _render_values(self, record):
        """``{placeholder: text}`` for every placeholder of the body, filled from ``record``."""
        self.ensure_one()
        variables = {variable.placeholder: variable for variable in self.variable_ids}
        values = {}
        for placeholder in self._placeholders():
            variable = variables.get(placeholder)
            value = variable._value_for(record) if variable else ""
            if not value:
                raise UserError(
                    _(
                        "The variable {{%(placeholder)s}} of template %(template)s has no value for %(record)s.",
                        placeholder=placeholder,
                        template=self.display_name,
                        record=record.display_name,
                    )
                )
            values[placeholder] = value
        return values

    def _render_body(self, values):
        """The body as the customer reads it."""
        self.ensure_one()
        return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), self.body or "")

    def _prepare_payload(self, values):
        """The ``template`` object of a send request (Meta's shape)."""
        self.ensure_one()
        payload = {"name": self.name, "language": {"code": self.language}}
        placeholders = self._placeholders()
        if all(placeholder.isdigit() for placeholder in placeholders):  # positional: {{1}}, {{2}}...
            parameters = [{"type": "text", "text": values[p]} for p in sorted(placeholders, key=int)]
        else:  # named: {{first_name}}...
            parameters = [{"type": "text", "parameter_name": p, "text": values[p]} for p in placeholders]
        if parameters:
            payload["components"] = [{"type": "body", "parameters": parameters}]
        return payload

    # ------------------------------------------------------------
    # Webhooks: the template's life cycle at Meta
    # (``_whatsapp_webhook_<field>(account, value)``, see crm.whatsapp.webhook.event)
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_find_for_webhook(self, account, value):
        """The template a webhook value names, by Meta's id, else by name and language, in any
        account of the same WhatsApp Business Account."""
        Template = self.with_context(active_test=False)
        template_id = value.get("message_template_id")
        template = Template.browse()
        if template_id:
            template = Template.search(
                [("account_id.waba_id", "=", account.waba_id), ("wa_template_id", "=", str(template_id))], limit=1
            )
        if not template and value.get("message_template_name"):
            template = Template.search(
                [
                    ("account_id.waba_id", "=", account.waba_id),
                    ("name", "=", str(value["message_template_name"])),
                    ("language", "=", str(value.get("message_template_language") or "")),
                ],
                limit=1,
            )
        return template

    @api.model
    def _whatsapp_webhook_message_template_status_update(self, account, value):
        template = self._whatsapp_find_for_webhook(account, value)
        event = value.get("event")
        if not template:
            return [
                _(
                    "Template %s is not known here.",
                    value.get("message_template_name") or value.get("message_template_id"),
                )
            ], False
        status = TEMPLATE_STATUSES.get(event)
        values = {"status": status} if status else {}
        if value.get("message_template_id") and not template.wa_template_id:
            values["wa_template_id"] = str(value["message_template_id"])
        if values:
            template.write(values)
        reason = value.get("reason") if value.get("reason") not in (None, "NONE") else ""
        account.message_post(
            body=_(
                "Template %(template)s: %(event)s %(reason)s",
                template=template.display_name,
                event=event,
                reason=reason or "",
            )
        )
        return ([] if status else [_("Template event %s recorded only.", event)]), False

    @api.model
    def _whatsapp_webhook_message_template_quality_update(self, account, value):
        template = self._whatsapp_find_for_webhook(account, value)
        account.message_post(
            body=_(
                "Template %(template)s quality: %(old)s → %(new)s",
                template=template.display_name or value.get("message_template_name"),
                old=value.get("previous_quality_score"),
                new=value.get("new_quality_score"),
            )
        )
        return [], False

    @api.model
    def _whatsapp_webhook_template_category_update(self, account, value):
        template = self._whatsapp_find_for_webhook(account, value)
        category = str(value.get("new_category") or value.get("correct_category") or "").lower()
        if template and category in dict(template._fields["category"].selection):
            template.category = category
        account.message_post(
            body=_(
                "Template %(template)s category: %(old)s → %(new)s",
                template=template.display_name or value.get("message_template_name"),
                old=value.get("previous_category"),
                new=category,
            )
        )
        return [], False
