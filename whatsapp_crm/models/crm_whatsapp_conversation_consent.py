"""What consent adds to conversations: STOP/START keywords through the inbound hook, and
Meta's marketing preferences."""

from odoo import api, models

from ..tools import webhook_payload as wp

PREFERENCE_STATES = {"stop": "opt_out", "resume": "opt_in"}


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    def _whatsapp_consent_customer(self):
        """The keys of this conversation's customer in consents: company, number, user id, contact."""
        self.ensure_one()
        return {
            "company": self.account_id.company_id,
            "number": f"+{self.wa_id}" if self.wa_id else False,
            "wa_user_id": self.wa_user_id or False,
            "partner": self.partner_id,
        }

    @api.model
    def _whatsapp_on_inbound(self, messages):
        super()._whatsapp_on_inbound(messages)
        matches = self.env["crm.whatsapp.consent.keyword"]._match(messages)
        if not matches:
            return
        entries = [
            {
                **message.conversation_id._whatsapp_consent_customer(),
                "scope": keyword.scope,
                "state": "opt_out" if keyword.action == "stop" else "opt_in",
                "source": "keyword",
                "proof": self.env._(
                    'The customer wrote "%(text)s" (WhatsApp message %(wamid)s).',
                    text=message.body,
                    wamid=message.wamid,
                ),
                "message": message,
            }
            for message, keyword in matches.items()
        ]
        changed = self.env["crm.whatsapp.consent"]._whatsapp_record(entries)
        self._whatsapp_confirm_consent(changed, matches)

    @api.model
    def _whatsapp_confirm_consent(self, changed, matches):
        """Answer each keyword that changed a consent, once: the customer just opened the window."""
        Message = self.env["crm.whatsapp.message"]
        confirmations = []
        changed_customers = {(c.company_id, c.number or c.wa_user_id) for c in changed}
        for message, keyword in matches.items():
            customer = message.conversation_id._whatsapp_consent_customer()
            consent = (customer["company"], customer["number"] or customer["wa_user_id"]) in changed_customers
            account = message.account_id
            text = account.consent_stop_reply if keyword.action == "stop" else account.consent_start_reply
            if consent and text and not any(c["reply_to_id"] == message.id for c in confirmations):
                confirmations.append(
                    {
                        "account_id": account.id,
                        "conversation_id": message.conversation_id.id,
                        "partner_id": message.partner_id.id,
                        "lead_id": message.lead_id.id,
                        "direction": "outbound",
                        "message_type": "text",
                        "body": text,
                        "reply_to_id": message.id,
                        "state": "queued",
                    }
                )
        if confirmations:
            Message.create(confirmations)._enqueue()

    @api.model
    def _whatsapp_webhook_user_preferences(self, account, value):
        """Meta's marketing preferences ("stop" / "resume") record a marketing consent."""
        result = super()._whatsapp_webhook_user_preferences(account, value)
        contacts, entries = value.get("contacts") or [], []
        for preference in value.get("user_preferences") or []:
            state = PREFERENCE_STATES.get(str(preference.get("value") or "").lower())
            if not state or "marketing" not in str(preference.get("category") or "marketing"):
                continue
            wa_id, user_id, _name, _username = wp.sender(preference, contacts)
            conversation = self._find(account, wa_id or preference.get("wa_id"), user_id)
            if not conversation:
                continue
            entries.append(
                {
                    **conversation._whatsapp_consent_customer(),
                    "scope": "marketing",
                    "state": state,
                    "source": "meta_preferences",
                    "proof": self.env._(
                        "WhatsApp marketing preference: %(value)s %(detail)s",
                        value=preference.get("value"),
                        detail=preference.get("detail") or "",
                    ),
                }
            )
        self.env["crm.whatsapp.consent"]._whatsapp_record(entries)
        return result
