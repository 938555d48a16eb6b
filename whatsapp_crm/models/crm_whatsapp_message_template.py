"""What template messages add to sending: Meta's refusals that put a template out of date."""

from odoo import _, fields, models

# Meta's answer when our copy of a template differs from its own: wrong parameter count, or
# the template (in this language) is missing or not approved.
RESYNC_CODES = (132000, 132001)


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    is_campaign = fields.Boolean(
        "Campaign Message",
        readonly=True,
        help="Sent to many customers at once: a template of low quality (red) is refused for it.",
    )

    def _whatsapp_policy_refusals(self):
        """A template that is not approved says its status (and Meta's reason)."""
        refusals = super()._whatsapp_policy_refusals()
        statuses = dict(self.env["crm.whatsapp.template"]._fields["status"]._description_selection(self.env))
        for message in self.filtered(lambda m: m.template_id.active and m.message_type == "template"):
            template = message.template_id
            if message.id not in refusals and message.is_campaign and template.quality_score == "red":
                refusals[message.id] = (
                    "template_quality",
                    _(
                        "The template %s has a low quality rating at WhatsApp (red): it is not sent to many "
                        "customers at once until its quality improves.",
                        template.display_name,
                    ),
                )
            elif refusals.get(message.id, ("",))[0] == "template_status":
                # not in the call: Babel's term extractor evaluates f-strings there and skips the file
                reason = f" ({template.rejection_reason})" if template.rejection_reason else ""
                refusals[message.id] = (
                    "template_status",
                    _(
                        "Only approved templates can be sent: %(template)s is %(status)s at WhatsApp%(reason)s.",
                        template=template.display_name,
                        status=statuses.get(template.status, template.status).lower(),
                        reason=reason,
                    ),
                )
        return refusals

    def _handle_api_error(self, error):
        super()._handle_api_error(error)
        if error.code in RESYNC_CODES:
            self.template_id._mark_for_sync(error)

    def _apply_result(self, wamid=None, error=None):
        super()._apply_result(wamid=wamid, error=error)
        if error and error.code in RESYNC_CODES and self.template_id:
            note = _("The template %s is marked for re-sync from Meta.", self.template_id.display_name)
            self.error_message = f"{self.error_message} {note}"
