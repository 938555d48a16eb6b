from odoo import _, api, fields, models
from odoo.exceptions import UserError


class CrmLead(models.Model):
    _inherit = "crm.lead"

    whatsapp_conversation_ids = fields.One2many("crm.whatsapp.conversation", "lead_id", "WhatsApp Conversations")
    whatsapp_message_ids = fields.One2many("crm.whatsapp.message", "lead_id", "WhatsApp Messages")
    whatsapp_message_count = fields.Integer(compute="_compute_whatsapp_message_count")
    whatsapp_ctwa_clid = fields.Char(
        "Click-to-WhatsApp Click ID", copy=False, help="Meta's click id of the ad that started the chat."
    )
    whatsapp_ad_id = fields.Char("Click-to-WhatsApp Ad ID", copy=False)
    whatsapp_consent_ids = fields.One2many(related="partner_id.whatsapp_consent_ids", string="WhatsApp Consents")
    whatsapp_consent_history_ids = fields.One2many(
        related="partner_id.whatsapp_consent_history_ids", string="WhatsApp Consent History"
    )
    whatsapp_blacklisted = fields.Boolean(related="partner_id.whatsapp_blacklisted")

    def _compute_whatsapp_message_count(self):
        counts = dict(
            self.env["crm.whatsapp.message"]._read_group([("lead_id", "in", self.ids)], ["lead_id"], ["__count"])
        )
        for lead in self:
            lead.whatsapp_message_count = counts.get(lead, 0)

    def action_whatsapp_record_consent(self):
        self.ensure_one()
        if not self.partner_id:
            raise UserError(_("Set the lead's customer first: the consent is the contact's."))
        return self.partner_id.action_whatsapp_record_consent()

    @api.model
    def _whatsapp_referral_values(self, referral):
        """UTM values of a lead coming from a click-to-WhatsApp ad."""
        values = {
            "medium_id": self.env.ref("whatsapp_crm.utm_medium_whatsapp_ad").id,
            "whatsapp_ctwa_clid": referral.get("ctwa_clid"),
            "whatsapp_ad_id": referral.get("source_id"),
        }
        headline = (referral.get("headline") or "").strip()
        if headline:
            Campaign = self.env["utm.campaign"].sudo()
            campaign = Campaign.search([("name", "=", headline)], limit=1) or Campaign.create({"name": headline})
            values["campaign_id"] = campaign.id
        return values

    def _whatsapp_get_recipients_info(self, account=None):
        """A lead's message is about the lead, goes to its number or its customer's, and a
        conversation started from it is answered by its salesperson. Its own conversation of the
        account comes first."""
        result = super()._whatsapp_get_recipients_info(account=None)
        for lead in self:
            info = result[lead.id]
            info["lead"] = lead
            info["user"] = lead.user_id or info["user"]
            if account:
                info["conversation"] = lead.sudo().whatsapp_conversation_ids.filtered(
                    lambda c: c.account_id == account
                )[:1]
        if account:
            self._whatsapp_find_conversations(account, result)
        return result

    def _whatsapp_conversations(self):
        return super()._whatsapp_conversations() | self.sudo().whatsapp_conversation_ids

    def action_open_whatsapp(self):
        self.ensure_one()
        return self.env["crm.whatsapp.message"]._action_open([("lead_id", "=", self.id)])
