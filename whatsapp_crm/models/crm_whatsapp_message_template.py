"""What template messages add to sending: Meta's refusals that put a template out of date."""

from odoo import _, models

# Meta's answer when our copy of a template differs from its own: wrong parameter count, or
# the template (in this language) is missing or not approved.
RESYNC_CODES = (132000, 132001)


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    def _get_send_refusal(self):
        reason = super()._get_send_refusal()
        template = self.template_id
        if self.message_type != "template" or not template:
            return reason
        if template.status != "approved" and template.active:
            statuses = dict(template._fields["status"]._description_selection(self.env))
            return _(
                "Only approved templates can be sent: %(template)s is %(status)s at WhatsApp%(reason)s.",
                template=template.display_name,
                status=statuses.get(template.status, template.status).lower(),
                reason=f" ({template.rejection_reason})" if template.rejection_reason else "",
            )
        return reason

    def _handle_api_error(self, error):
        super()._handle_api_error(error)
        if error.code in RESYNC_CODES:
            self.template_id._mark_for_sync(error)

    def _apply_result(self, wamid=None, error=None):
        super()._apply_result(wamid=wamid, error=error)
        if error and error.code in RESYNC_CODES and self.template_id:
            note = _("The template %s is marked for re-sync from Meta.", self.template_id.display_name)
            self.error_message = f"{self.error_message} {note}"
