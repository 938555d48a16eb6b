import ast

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..models.crm_whatsapp_message import MAX_BUTTON_TITLE


class CrmWhatsappComposer(models.TransientModel):
    _name = "crm.whatsapp.composer"
    _description = "Send WhatsApp Message"

    res_model = fields.Char("Document Model", readonly=True)
    res_ids = fields.Char("Document IDs", readonly=True, help="Python list of the ids of the recipients' records.")
    composition_mode = fields.Selection(
        [("single", "Send Now"), ("mass", "Queue for Each Record")],
        compute="_compute_composition_mode",
        store=True,
        readonly=False,
    )
    recipient_count = fields.Integer(compute="_compute_recipient_count")
    account_id = fields.Many2one(
        "crm.whatsapp.account",
        "From",
        compute="_compute_account_id",
        store=True,
        readonly=False,
    )
    conversation_id = fields.Many2one("crm.whatsapp.conversation", compute="_compute_conversation_id")
    recipient = fields.Char("To", compute="_compute_conversation_id")
    window_open = fields.Boolean("Window Open", compute="_compute_conversation_id")
    window_expires_at = fields.Datetime("Window Open Until", compute="_compute_conversation_id")
    kind = fields.Selection(
        [("text", "Message"), ("buttons", "Reply Buttons"), ("template", "Template")],
        string="Send",
        compute="_compute_kind",
        store=True,
        readonly=False,
    )
    body = fields.Text("Message")
    attachment_ids = fields.Many2many(
        "ir.attachment", "crm_whatsapp_composer_ir_attachment_rel", "composer_id", "attachment_id", "Attachments"
    )
    button_1 = fields.Char("Button 1", size=MAX_BUTTON_TITLE)
    button_2 = fields.Char("Button 2", size=MAX_BUTTON_TITLE)
    button_3 = fields.Char("Button 3", size=MAX_BUTTON_TITLE)
    template_id = fields.Many2one(
        "crm.whatsapp.template",
        domain="[('account_id', '=', account_id), ('status', '=', 'approved'),"
        " '|', ('model_id', '=', False), ('model', '=', res_model)]",
    )
    preview = fields.Text(compute="_compute_preview")
    reply_to_id = fields.Many2one("crm.whatsapp.message", "Reply To")
    duplicate_count = fields.Integer(readonly=True, help="Identical messages to one customer left out.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if not values.get("res_model") and context.get("active_model") and context.get("active_ids"):
            values["res_model"] = context["active_model"]
            values["res_ids"] = repr(list(context["active_ids"]))
        elif values.get("res_model") and not values.get("res_ids") and context.get("default_res_id"):
            values["res_ids"] = repr([context["default_res_id"]])
        return values

    def _get_records(self):
        self.ensure_one()
        if not self.res_model or not self.res_ids:
            return self.env["crm.whatsapp.conversation"]
        records = self.env[self.res_model].browse(ast.literal_eval(self.res_ids)).exists()
        records.check_access("read")
        return records

    @api.depends("res_model", "res_ids")
    def _compute_recipient_count(self):
        for composer in self:
            composer.recipient_count = len(ast.literal_eval(composer.res_ids)) if composer.res_ids else 0

    @api.depends("res_ids")
    def _compute_composition_mode(self):
        for composer in self:
            if not composer.composition_mode or composer.recipient_count > 1:
                composer.composition_mode = "mass" if composer.recipient_count > 1 else "single"

    @api.depends("res_model", "res_ids")
    def _compute_account_id(self):
        for composer in self:
            if not composer.account_id:
                composer.account_id = composer._get_records()._whatsapp_default_account()

    @api.depends("account_id", "res_model", "res_ids", "composition_mode")
    def _compute_conversation_id(self):
        for composer in self:
            conversation = self.env["crm.whatsapp.conversation"]
            if composer.composition_mode == "single" and composer.account_id:
                record = composer._get_records()[:1]
                info = record._whatsapp_get_recipients_info(account=composer.account_id).get(record.id, {})
                found = info.get("conversation") or conversation
                # another salesperson's conversation is not shown, nor written into (see the send API)
                conversation = found.with_env(self.env) if found.with_env(self.env).has_access("read") else conversation
                composer.recipient = conversation.display_name or info.get("number") or _("No WhatsApp number")
            else:
                composer.recipient = _("%s recipients", composer.recipient_count)
            composer.conversation_id = conversation
            composer.window_open = conversation.can_send_free_text
            composer.window_expires_at = conversation.window_expires_at if conversation.can_send_free_text else False

    @api.depends("window_open", "composition_mode")
    def _compute_kind(self):
        for composer in self:
            if composer.composition_mode == "single" and not composer.window_open:
                composer.kind = "template"
            elif not composer.kind:
                composer.kind = "text"

    @api.depends("kind", "body", "template_id", "button_1", "button_2", "button_3", "res_ids")
    def _compute_preview(self):
        for composer in self:
            if composer.kind == "template" and composer.template_id:
                record = composer._get_records()[:1]
                try:
                    values = composer.template_id._render_values(record)
                except UserError as error:
                    composer.preview = error.args[0]
                    continue
                composer.preview = composer.template_id._render_text(values)
            elif composer.kind == "template":
                composer.preview = False
            elif composer.kind == "buttons":
                buttons = " | ".join(f"[{title}]" for title in composer._button_titles())
                composer.preview = f"{composer.body or ''}\n\n{buttons}"
            else:
                composer.preview = composer.body or ""

    def _button_titles(self):
        return [title for title in (self.button_1, self.button_2, self.button_3) if title]

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def _send_messages(self, send_now=False):
        """Send this composer's message to every recipient record through the send API."""
        self.ensure_one()
        records = self._get_records()
        if not records:
            raise UserError(_("There is nobody to send this WhatsApp message to."))
        if not self.account_id:
            raise UserError(_("Configure a WhatsApp account first."))
        if self.kind == "template" and not self.template_id:
            raise UserError(_("Choose a template."))
        attachments = self.attachment_ids if self.kind == "text" else self.env["ir.attachment"]
        if attachments:
            # only files the user may read; other documents' files stay where they are
            attachments.check("read")
            uploaded = attachments.filtered(lambda a: a.res_model == self._name and a.res_id in (0, self.id))
            # sudo: the files were uploaded on this wizard; they now belong to the first document
            uploaded.sudo().write({"res_model": records._name, "res_id": records[:1].id})
        single = self.composition_mode == "single" and len(records) == 1
        content = {
            "body": self.body or "",
            "template": self.template_id if self.kind == "template" else None,
            "attachments": attachments,
            "buttons": self._button_titles() if self.kind == "buttons" else None,
        }
        messages = records._message_whatsapp(
            account=self.account_id,
            reply_to=self.reply_to_id or None,
            send_now=send_now and single,
            raise_exception=single,
            message_values={"is_campaign": True} if not single else None,
            **content,
        )
        # e.g. two leads of one contact: the customer got the same message once
        parts = self.env["crm.whatsapp.message"]._whatsapp_parts(**content)
        self.duplicate_count = max(len(records) * len(parts) - len(messages), 0)
        return messages

    def action_send(self):
        """Send now to one record (the user sees the result), or queue for many."""
        self.ensure_one()
        # several recipients are always queued: only the cron sends them throttled
        if self.composition_mode == "mass" or self.recipient_count > 1:
            messages = self._send_messages()
            queued = messages.filtered(lambda m: m.state == "queued")
            summary = _(
                "%(queued)s WhatsApp messages queued, %(refused)s refused.",
                queued=len(queued),
                refused=len(messages - queued),
            )
            if self.duplicate_count:
                summary += " " + _("%s identical messages to the same customer were left out.", self.duplicate_count)
            return self._notification("info", summary)
        messages = self._send_messages(send_now=True)
        failed = messages.filtered(lambda m: m.state in ("failed", "refused"))
        if failed:
            return self._notification("danger", failed[0].error_message, sticky=True)
        if messages.filtered(lambda m: m.state == "unconfirmed"):
            return self._notification("warning", messages.filtered(lambda m: m.state == "unconfirmed")[0].error_message)
        waiting = messages.filtered(lambda m: m.state == "queued")
        if waiting.filtered("next_try_at"):
            return self._notification("warning", waiting.filtered("next_try_at")[0].error_message)
        if waiting:
            return self._notification(
                "info", _("WhatsApp message queued: it goes as soon as WhatsApp's rate limits allow.")
            )
        return self._notification("success", _("WhatsApp message sent."))

    def _notification(self, kind, message, sticky=False):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": kind,
                "title": _("WhatsApp"),
                "message": message,
                "sticky": sticky,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
