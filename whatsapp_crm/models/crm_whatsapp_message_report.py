from odoo import api, fields, models

from .crm_whatsapp_message_stat import MESSAGE_KEY_FIELDS


class CrmWhatsappMessage(models.Model):
    """What the messages report counts of each message (see crm.whatsapp.message.stat): the agent
    and team it is counted for, kept as they were when it happened."""

    _inherit = "crm.whatsapp.message"

    report_user_id = fields.Many2one(
        "res.users",
        "Agent (Reports)",
        readonly=True,
        ondelete="set null",
        help="Who sent it, else who handled the chat when it came.",
    )
    report_team_id = fields.Many2one(
        "crm.team", "Sales Team (Reports)", readonly=True, ondelete="set null", help="The chat's team when it came."
    )

    @api.model_create_multi
    def create(self, vals_list):
        Conversation = self.env["crm.whatsapp.conversation"]
        for vals in vals_list:
            conversation = Conversation.browse(vals.get("conversation_id"))
            vals.setdefault("report_user_id", vals.get("author_id") or conversation.user_id.id)
            vals.setdefault("report_team_id", conversation.team_id.id)
        messages = super().create(vals_list)
        # inbound messages are counted by the inbound hook, once their chat is assigned; those of
        # data files (demo data, installed or updated) never pass it
        loading = bool(self.env.context.get("install_filename"))
        self.env["crm.whatsapp.message.stat"]._count(messages.filtered(lambda m: loading or m.direction == "outbound"))
        return messages

    def write(self, vals):
        moving = self.browse()
        if vals.keys() & set(MESSAGE_KEY_FIELDS):
            moving = self.filtered(lambda m: m.direction == "outbound")
        Stat = self.env["crm.whatsapp.message.stat"]
        before = {}
        for message in moving:
            key = Stat._key(message)
            before[key] = before.get(key, 0) - 1
        result = super().write(vals)
        if moving:
            for message in moving:
                key = Stat._key(message)
                before[key] = before.get(key, 0) + 1
            Stat._add(before)
        return result

    def unlink(self):
        self.env["crm.whatsapp.message.stat"]._count(self, sign=-1)
        return super().unlink()

    def _report_count_inbound(self):
        """Count these inbound messages, with the agent and team their chat has now (the inbound
        hook may just have assigned it)."""
        for message in self:
            conversation = message.conversation_id
            values = {}
            if not message.report_user_id and conversation.user_id:
                values["report_user_id"] = conversation.user_id.id
            if not message.report_team_id and conversation.team_id:
                values["report_team_id"] = conversation.team_id.id
            if values:
                message.write(values)
        self.env["crm.whatsapp.message.stat"]._count(self)
