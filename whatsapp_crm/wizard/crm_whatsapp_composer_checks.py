from collections import Counter

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.crm_whatsapp_message import MAX_BUTTON_TITLE, MEDIA_MAX_SIZES, format_size, media_type_of
from ..tools.phone import wa_digits

MAX_TEXT = 4096  # Meta's limit of a text message
MAX_CAPTION = 1024  # and of a caption or the text of a message with buttons


class CrmWhatsappComposer(models.TransientModel):
    """What the user sees before sending: counters against Meta's limits, files too large, and
    for a mass send how many recipients the policy would refuse, and why."""

    _inherit = "crm.whatsapp.composer"

    body_counter = fields.Char("Characters", compute="_compute_counters")
    buttons_counter = fields.Char("Button Characters", compute="_compute_counters")
    attachment_warning = fields.Text(compute="_compute_attachment_warning")
    forecast = fields.Text("Before Sending", compute="_compute_forecast")

    @api.depends("body", "kind", "attachment_ids", "button_1", "button_2", "button_3")
    def _compute_counters(self):
        for composer in self:
            limit = MAX_CAPTION if composer.kind == "buttons" or composer.attachment_ids else MAX_TEXT
            limit_text = f"{limit:,}"  # not in the call: Babel's extractor would evaluate the f-string
            composer.body_counter = self.env._(
                "%(count)s / %(limit)s characters", count=len(composer.body or ""), limit=limit_text
            )
            composer.buttons_counter = " · ".join(
                f"{title} {len(title)}/{MAX_BUTTON_TITLE}" for title in composer._button_titles()
            )

    @api.depends("attachment_ids")
    def _compute_attachment_warning(self):
        for composer in self:
            warnings = []
            for attachment in composer.attachment_ids:
                media_type = media_type_of(attachment.mimetype)
                limit = MEDIA_MAX_SIZES[media_type]
                if attachment.file_size > limit:
                    warnings.append(
                        self.env._(
                            "%(file)s is too large for WhatsApp: %(size)s, at most %(limit)s for this kind of file.",
                            file=attachment.name,
                            size=format_size(attachment.file_size),
                            limit=format_size(limit),
                        )
                    )
            composer.attachment_warning = "\n".join(warnings) or False

    @api.depends("composition_mode", "account_id", "kind", "template_id", "body", "res_ids")
    def _compute_forecast(self):
        for composer in self:
            if composer.composition_mode != "mass" or not composer.account_id or not composer.res_ids:
                composer.forecast = False
                continue
            refused = composer._forecast_refusals()
            total = composer.recipient_count
            ready = total - sum(refused.values())
            lines = [self.env._("%(ready)s of %(total)s recipients can receive it now.", ready=ready, total=total)]
            lines += [f"• {count}: {reason}" for reason, count in sorted(refused.items(), key=lambda i: (-i[1], i[0]))]
            composer.forecast = "\n".join(lines)

    def _forecast_refusals(self):
        """``Counter({reason: recipients})`` that the policy would refuse now: the same checks as
        the send API, on draft messages that are never saved."""
        self.ensure_one()
        records = self._get_records()
        Message, Conversation = self.env["crm.whatsapp.message"], self.env["crm.whatsapp.conversation"]
        template = self.template_id if self.kind == "template" else None
        buttons = self._button_titles() if self.kind == "buttons" else None
        part = Message._whatsapp_parts(self.body or "", template, None, buttons)[0]
        infos = records._whatsapp_get_recipients_info(account=self.account_id)
        refused, drafts = Counter(), Message
        for record in records:
            info = infos[record.id]
            conversation = info["conversation"]
            if not conversation and not info["number"]:
                refused[self.env._("This recipient has no WhatsApp number.")] += 1
                continue
            if conversation and not conversation.with_env(self.env).has_access("read"):
                refused[self.env._("Another salesperson talks with this customer.")] += 1
                continue
            if not conversation:  # started by the send: no window yet
                conversation = Conversation.new(
                    {
                        "account_id": self.account_id.id,
                        "wa_id": wa_digits(info["number"]),
                        "partner_id": info["partner"].id,
                    }
                )
            values = {
                **part,
                "account_id": self.account_id.id,
                "conversation_id": conversation,
                "direction": "outbound",
            }
            if template:
                try:
                    values["template_parameters"] = template._render_values(record)
                except UserError as error:
                    refused[error.args[0]] += 1
                    continue
            drafts |= Message.new(values)
        for _code, reason in drafts._whatsapp_policy_refusals().values():
            refused[reason] += 1
        return refused

    # After a mass send: who was refused, and why
    refusal_summary = fields.Text(readonly=True)

    def _send_messages(self, send_now=False):
        messages = super()._send_messages(send_now=send_now)
        names_by_reason = {}
        for message in messages.filtered(lambda m: m.state == "refused"):
            name = message.partner_id.name or message.lead_id.name or message.conversation_id.display_name or "?"
            names_by_reason.setdefault(message.error_message, []).append(name)
        lines = []
        for reason, names in names_by_reason.items():
            shown = ", ".join(names[:5])
            more = self.env._(" and %s more", len(names) - 5) if len(names) > 5 else ""
            lines.append(f"{shown}{more}: {reason}")
        self.refusal_summary = "\n".join(lines) or False
        return messages

    def action_send(self):
        action = super().action_send()
        if self.refusal_summary and self.recipient_count > 1 and action.get("tag") == "display_notification":
            params = action["params"]
            params.update(
                type="warning",
                sticky=True,
                message=f"{params['message']}\n{self.refusal_summary}",
            )
        return action
