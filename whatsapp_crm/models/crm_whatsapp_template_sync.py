"""The Meta life cycle of templates: sync from Meta, submit to Meta, status/quality/category updates."""

import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..tools import whatsapp_template as wt
from ..tools.whatsapp_cloud_api import WhatsAppApiError

_logger = logging.getLogger(__name__)

SYNCED_FIELDS = (
    "name",
    "language",
    "category",
    "status",
    "rejection_reason",
    "quality_score",
    "parameter_format",
    "header_type",
    "header_text",
    "body",
    "footer",
    "wa_template_id",
)
GONE_STATUSES = ("deleted", "archived", "pending_deletion")


class CrmWhatsappTemplate(models.Model):
    _inherit = "crm.whatsapp.template"

    # ------------------------------------------------------------------
    # Sync: Meta -> Odoo
    # ------------------------------------------------------------------

    def action_sync(self):
        """Button: read the templates of the accounts of these templates (all accounts when
        called from the list without selection) from Meta."""
        accounts = self.account_id or self.env["crm.whatsapp.account"].search([])
        return accounts.action_sync_templates()

    @api.model
    def _sync_account(self, account):
        """Create, update and archive the templates of ``account`` as Meta lists them.

        :return: ``{"created": n, "updated": n, "archived": n}``
        """
        try:
            with account._get_api() as api:
                remote = api.list_templates()
        except WhatsAppApiError as error:
            account._handle_api_error(error)
            raise UserError(
                _(
                    "The templates of %(account)s could not be read from WhatsApp: %(error)s",
                    account=account.name,
                    error=error.get_message(self.env.lang),
                )
            ) from error
        Template = self.with_context(active_test=False, tracking_disable=True).sudo()
        existing = Template.search([("account_id", "=", account.id)])
        by_meta_id = {t.wa_template_id: t for t in existing if t.wa_template_id}
        by_name = {(t.name, t.language): t for t in existing}
        counts = {"created": 0, "updated": 0, "archived": 0}
        seen = Template.browse()
        now = fields.Datetime.now()
        for data in remote:
            values = wt.parse_template(data)
            if not values["name"] or not values["language"]:
                continue
            template = by_meta_id.get(values["wa_template_id"]) or by_name.get((values["name"], values["language"]))
            record_values = {key: values[key] for key in SYNCED_FIELDS if values.get(key) is not None}
            record_values.update(
                last_sync_at=now, needs_sync=False, active=values["status"] not in GONE_STATUSES, account_id=account.id
            )
            if template:
                template.write(record_values)
                counts["updated"] += 1
            else:
                template = Template.create(record_values)
                counts["created"] += 1
            template._sync_buttons(values["buttons"])
            template._sync_variables(values["examples"])
            seen |= template
        gone = existing.filtered(lambda t: t.wa_template_id and t.active and t not in seen)
        if gone:
            gone.write({"active": False, "status": "deleted", "last_sync_at": now})
            counts["archived"] = len(gone)
        account.message_post(
            body=_(
                "Templates synchronized from WhatsApp: %(created)s created, %(updated)s updated, "
                "%(archived)s archived.",
                **counts,
            )
        )
        return counts

    def _sync_buttons(self, buttons):
        """Make the buttons those of Meta, keeping the records (and their variables) in place."""
        self.ensure_one()
        current = self.button_ids
        if [b.button_type for b in current] != [b["button_type"] for b in buttons]:
            current.unlink()
            self.write({"button_ids": [fields.Command.create(button) for button in buttons]})
            return
        for record, button in zip(current, buttons, strict=True):
            changed = {key: value for key, value in button.items() if record[key] != value}
            if changed:
                record.write(changed)

    def _sync_variables(self, examples):
        """A variable per placeholder that has none yet, with Meta's example as its fallback;
        the mapping a user gave an existing variable stays."""
        self.ensure_one()
        self.invalidate_recordset(["variable_ids"])
        known = {variable.key for variable in self.variable_ids}
        commands = []
        for sequence, key in enumerate(self._placeholders(), start=1):
            if key in known:
                continue
            component, button_id, placeholder = "body", False, key
            if key.startswith("header:"):
                component, placeholder = "header", key.split(":", 1)[1]
            elif key.startswith("button:"):
                _prefix, index, placeholder = key.split(":", 2)
                component, button_id = "button", self.button_ids[int(index)].id
            commands.append(
                fields.Command.create(
                    {
                        "sequence": sequence * 10,
                        "component": component,
                        "button_id": button_id,
                        "placeholder": placeholder,
                        "default_value": examples.get(key) or False,
                    }
                )
            )
        if commands:
            self.write({"variable_ids": commands})

    # ------------------------------------------------------------------
    # Submit: Odoo -> Meta
    # ------------------------------------------------------------------

    def _examples(self):
        """``{key: example}`` for Meta's review: each variable's fallback (or fixed value)."""
        self.ensure_one()
        variables = self._variables_by_key()
        examples = {}
        for key in self._placeholders():
            variable = variables.get(key)
            example = variable and (variable.default_value or (variable.source == "fixed" and variable.fixed_value))
            if not example:
                raise UserError(
                    _(
                        "Give the variable {{%(placeholder)s}} of %(template)s a fallback: Meta reviews the "
                        "template with it as an example.",
                        placeholder=key,
                        template=self.display_name,
                    )
                )
            examples[key] = example
        return examples

    def _whatsapp_meta_components(self):
        """The components Meta holds for this template, as far as Odoo knows them (for the
        emulator of ``make run``): the examples are the variables' fallbacks, where given."""
        self.ensure_one()
        variables = self._variables_by_key()
        examples = {
            key: variables[key].default_value or variables[key].fixed_value or ""
            for key in self._placeholders()
            if key in variables
        }
        return wt.creation_components(self._as_dict(), examples, header_handle="4::example")

    def _creation_values(self, header_handle=None):
        self.ensure_one()
        return {
            "name": self.name,
            "language": self.language,
            "category": self.category.upper(),
            "parameter_format": self.parameter_format.upper(),
            "components": wt.creation_components(self._as_dict(), self._examples(), header_handle=header_handle),
        }

    def action_submit(self):
        """Send new templates to Meta for review, and edited ones again; Meta's answer updates them."""
        for template in self:
            if template.header_type in wt.HEADER_MEDIA and not template.header_file:
                raise UserError(_("Add an example file for the header of %s.", template.display_name))
            try:
                with template.account_id._get_api() as api:
                    handle = None
                    if template.header_type in wt.HEADER_MEDIA:
                        attachment = template._header_attachment()
                        handle = api.upload_template_example(attachment.raw, attachment.mimetype, attachment.name)
                    values = template._creation_values(header_handle=handle)
                    if template.wa_template_id:
                        edit = {key: values[key] for key in ("category", "components")}
                        api.edit_template(template.wa_template_id, edit)
                        result = {"id": template.wa_template_id, "status": "PENDING"}
                    else:
                        result = api.create_template(values)
            except WhatsAppApiError as error:
                template.account_id._handle_api_error(error)
                raise UserError(
                    _(
                        "WhatsApp refused the template %(template)s: %(error)s",
                        template=template.display_name,
                        error=error.get_message(self.env.lang),
                    )
                ) from error
            update = {
                "wa_template_id": str(result.get("id") or template.wa_template_id or ""),
                "status": wt.status_of(result.get("status")) or "pending",
                "rejection_reason": False,
                "needs_sync": False,
            }
            category = (result.get("category") or "").lower()
            if category in wt.CATEGORIES:
                update["category"] = category
            template.write(update)
            template.message_post(body=_("Submitted to WhatsApp for review."))
        return True

    # ------------------------------------------------------------------
    # Webhooks: the template's life cycle at Meta
    # (``_whatsapp_webhook_<field>(account, value)``, see crm.whatsapp.webhook.event)
    # ------------------------------------------------------------------

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
        event = str(value.get("event") or "")
        if not template:
            return [
                _(
                    "Template %s is not known here.",
                    value.get("message_template_name") or value.get("message_template_id"),
                )
            ], False
        if value.get("message_template_id") and not template.wa_template_id:
            template.wa_template_id = str(value["message_template_id"])
        reason = value.get("reason") if value.get("reason") not in (None, "NONE") else ""
        known = template._apply_meta_status(event, reason or None)
        template.message_post(
            body=_("WhatsApp: %(event)s %(reason)s", event=event, reason=reason or ""),
        )
        return ([] if known else [_("Template event %s recorded only.", event)]), False

    @api.model
    def _whatsapp_webhook_message_template_quality_update(self, account, value):
        template = self._whatsapp_find_for_webhook(account, value)
        if not template:
            return [_("Template %s is not known here.", value.get("message_template_name"))], False
        template._apply_meta_quality(str(value.get("new_quality_score") or ""))
        return [], False

    @api.model
    def _whatsapp_webhook_template_category_update(self, account, value):
        template = self._whatsapp_find_for_webhook(account, value)
        if not template:
            return [_("Template %s is not known here.", value.get("message_template_name"))], False
        template._apply_meta_category(str(value.get("new_category") or value.get("correct_category") or ""))
        return [], False

    # ------------------------------------------------------------------
    # Meta's refusals and the daily sync
    # ------------------------------------------------------------------

    def _apply_meta_status(self, event, reason=None):
        """A ``message_template_status_update``: the new status and Meta's reason."""
        status = wt.status_of(event)
        values = {}
        if status:
            values["status"] = status
        if reason not in (None, "", "NONE"):
            values["rejection_reason"] = reason
        elif status == "approved":
            values["rejection_reason"] = False
        if values:
            self.sudo().write(values)
        return bool(status)

    def _apply_meta_quality(self, score):
        score = (score or "").lower()
        if score in wt.QUALITIES or score == "unknown":
            self.sudo().write({"quality_score": score})

    def _apply_meta_category(self, category):
        category = (category or "").lower()
        if category in wt.CATEGORIES:
            self.sudo().write({"category": category})

    def _mark_for_sync(self, error):
        """WhatsApp refused a send (132000, 132001): our copy differs from Meta's; say so."""
        for template in self.sudo().filtered(lambda t: not t.needs_sync):
            template.needs_sync = True
            template.message_post(
                body=_(
                    "WhatsApp refused a message of this template: %s It is marked for re-sync from Meta.",
                    error.get_message(self.env.lang),
                )
            )

    @api.model
    def _cron_sync(self):
        """Daily: read the templates of every account with a valid token."""
        for account in self.env["crm.whatsapp.account"].search([("token_invalid", "=", False)]):
            if not account.sudo().access_token:
                continue
            try:
                self._sync_account(account)
            except UserError as error:
                _logger.info("WhatsApp templates of %s not synchronized: %s", account.name, error)
