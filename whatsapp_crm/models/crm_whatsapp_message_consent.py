"""What consent adds to sending: its rules in the send policy, and opt-outs learnt from errors."""

from datetime import timedelta

from odoo import _, fields, models

from .crm_whatsapp_message import OUTBOUND_DONE_STATES


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    def _whatsapp_consent_refusals(self):
        """``{message: (code, reason)}`` for the outbound messages consent forbids, with a fixed number of
        queries for the batch:

        - a marketing template needs the customer's explicit marketing opt-in;
        - nothing business-initiated goes to a customer opted out of all of them, except replies
          within the window the customer opened (unless the account says otherwise) and the
          confirmation of their keyword;
        - at most N marketing templates per customer in D days (per account).
        """
        messages = self.filtered(lambda m: m.direction == "outbound" and m.conversation_id)
        if not messages:
            return {}
        Consent = self.env["crm.whatsapp.consent"]
        customers = {m: m.conversation_id._whatsapp_consent_customer() for m in messages}
        consents = Consent._whatsapp_find(list(customers.values()))
        confirmed = (
            set(
                self.env["crm.whatsapp.consent.history"]
                .sudo()
                .search([("message_id", "in", messages.reply_to_id.ids)])
                .mapped("message_id")
                .ids
            )
            if messages.reply_to_id
            else set()
        )
        sent_counts = messages._whatsapp_marketing_counts()
        scope_labels = dict(self.env["crm.whatsapp.consent"]._fields["scope"]._description_selection(self.env))
        refusals = {}
        for message in messages:
            customer = customers[message]
            key = (
                customer["company"].id,
                customer["number"] or None,
                None if customer["number"] else customer["wa_user_id"] or None,
            )

            def consent(scope, key=key):
                return consents.get((key[0], scope, key[1], key[2]))

            opted_out_all = consent("all") and consent("all").state == "opt_out"
            marketing = message.message_type == "template" and message.template_id.category == "marketing"
            in_window = message.conversation_id.can_send_free_text and message.account_id.consent_window_replies
            if marketing:
                marketing_consent = consent("marketing")
                if opted_out_all:
                    refusals[message] = ("opt_out", self._whatsapp_opt_out_reason(consent("all"), scope_labels))
                elif not marketing_consent:
                    refusals[message] = (
                        "marketing_no_opt_in",
                        _(
                            "A marketing template needs the customer's explicit opt-in: none is recorded for %s.",
                            message.conversation_id.display_name,
                        ),
                    )
                elif marketing_consent.state == "opt_out":
                    refusals[message] = (
                        "marketing_opt_out",
                        self._whatsapp_opt_out_reason(marketing_consent, scope_labels),
                    )
                else:
                    reason = message._whatsapp_frequency_refusal(sent_counts)
                    if reason:
                        refusals[message] = ("frequency_cap", reason)
            elif opted_out_all and not in_window and message.reply_to_id.id not in confirmed:
                refusals[message] = ("opt_out", self._whatsapp_opt_out_reason(consent("all"), scope_labels))
        return refusals

    def _whatsapp_opt_out_reason(self, consent, scope_labels):
        sources = dict(consent._fields["source"]._description_selection(self.env))
        if consent.scope == "marketing":
            return _(
                "The customer stopped marketing messages on %(date)s (%(origin)s): only service messages are allowed.",
                date=fields.Date.to_string(consent.changed_at),
                origin=sources.get(consent.source, consent.source),
            )
        return _(
            "The customer opted out of %(scope)s on %(date)s (%(origin)s).",
            scope=scope_labels[consent.scope].lower(),
            date=fields.Date.to_string(consent.changed_at),
            origin=sources.get(consent.source, consent.source),
        )

    def _whatsapp_marketing_counts(self):
        """``{(account id, conversation id): marketing templates sent in the accounts' periods}``,
        in one query; counted per message as it passes (see _whatsapp_frequency_refusal)."""
        capped = self.filtered(lambda m: m.account_id.marketing_cap_count > 0)
        if not capped:
            return {}
        longest = max(capped.account_id.mapped("marketing_cap_days") or [0])
        since = fields.Datetime.now() - timedelta(days=max(longest, 1))
        rows = self.sudo()._read_group(
            [
                ("conversation_id", "in", capped.conversation_id.ids),
                ("direction", "=", "outbound"),
                ("message_type", "=", "template"),
                ("template_id.category", "=", "marketing"),
                ("state", "in", OUTBOUND_DONE_STATES),
                ("timestamp", ">=", since),
                ("id", "not in", self.ids),
            ],
            ["account_id", "conversation_id"],
            ["timestamp:array_agg"],
        )
        return {(account.id, conversation.id): list(stamps) for account, conversation, stamps in rows}

    def _whatsapp_frequency_refusal(self, sent_counts):
        """The cap of marketing templates per customer: refuse the N+1th in D days."""
        self.ensure_one()
        account = self.account_id
        if account.marketing_cap_count <= 0:
            return False
        since = fields.Datetime.now() - timedelta(days=account.marketing_cap_days)
        stamps = sent_counts.setdefault((account.id, self.conversation_id.id), [])
        if len([s for s in stamps if s >= since]) >= account.marketing_cap_count:
            return _(
                "This customer already received %(count)s marketing templates in the last %(days)s days, "
                "the most the account %(account)s allows.",
                count=account.marketing_cap_count,
                days=account.marketing_cap_days,
                account=account.name,
            )
        stamps.append(fields.Datetime.now())  # this one counts for the next of the batch
        return False

    def _whatsapp_policy_refusals(self):
        refusals = super()._whatsapp_policy_refusals()
        candidates = self.filtered(lambda m: m.id not in refusals)
        for message, refusal in candidates._whatsapp_consent_refusals().items():
            refusals[message.id] = refusal
        return refusals

    def _whatsapp_record_opt_out(self, error=None):
        """WhatsApp refused a message because the customer stopped marketing (131050): a marketing
        opt-out consent. Never ``phone.blacklist``, which would also stop SMS and service replies."""
        entries = [
            {
                **message.conversation_id._whatsapp_consent_customer(),
                "scope": "marketing",
                "state": "opt_out",
                "source": "api_error",
                "proof": self.env._(
                    "WhatsApp refused message %s: the customer stopped marketing messages.", message.wamid or message.id
                ),
            }
            for message in self.filtered("conversation_id")
        ]
        self.env["crm.whatsapp.consent"]._whatsapp_record(entries)
