from odoo import api, fields, models


class CrmWhatsappConversation(models.Model):
    """Sessions of a conversation: opened by the inbound hook, closed with the conversation."""

    _inherit = "crm.whatsapp.conversation"

    session_ids = fields.One2many("crm.whatsapp.session", "conversation_id", "Sessions")
    session_count = fields.Integer(compute="_compute_session_count")

    def _compute_session_count(self):
        counts = dict(
            self.env["crm.whatsapp.session"]._read_group(
                [("conversation_id", "in", self.ids)], ["conversation_id"], ["__count"]
            )
        )
        for conversation in self:
            conversation.session_count = counts.get(conversation, 0)

    @api.model
    def _whatsapp_on_inbound(self, messages):
        result = super()._whatsapp_on_inbound(messages)
        # sudo: facts are written by the system, whoever's messages they are
        self.sudo()._whatsapp_report_inbound(messages.sudo())
        return result

    @api.model
    def _whatsapp_report_inbound(self, messages):
        """Reporting's part of the inbound hook: survey answers first, then session facts, then
        the messages' counts (after the hook's other extensions: a new chat is assigned by now)."""
        Session = self.env["crm.whatsapp.session"]
        sessions = Session._of_inbound(messages)
        answers = Session._csat_parse_answers(messages, sessions)
        Session._register_inbound(messages - answers, sessions)
        messages.filtered(lambda m: m.direction == "inbound")._report_count_inbound()

    def write(self, vals):
        result = super().write(vals)
        if {"user_id", "team_id", "lead_id"} & vals.keys() or vals.get("state") == "closed":
            sessions = (
                self.env["crm.whatsapp.session"]
                .sudo()
                .search([("conversation_id", "in", self.ids), ("state", "=", "open")])
            )
            sessions._sync_conversation(vals)
            if vals.get("state") == "closed":
                sessions._close("closed")
        return result

    def action_open_sessions(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Sessions"),
            "res_model": "crm.whatsapp.session",
            "view_mode": "list,form",
            "domain": [("conversation_id", "=", self.id)],
            "context": {"create": False},
        }
