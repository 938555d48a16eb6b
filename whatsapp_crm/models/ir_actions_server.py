import logging

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)

STATE = "whatsapp_crm"


class IrActionsServer(models.Model):
    """Server actions sending WhatsApp messages, for automation rules and the action menu."""

    _inherit = "ir.actions.server"

    state = fields.Selection(selection_add=[(STATE, "Send WhatsApp")], ondelete={STATE: "cascade"})
    whatsapp_crm_account_id = fields.Many2one(
        "crm.whatsapp.account",
        "WhatsApp Account",
        ondelete="set null",
        help="Empty: the template's account, else the one that last talked with the record, else the first one.",
    )
    whatsapp_crm_template_id = fields.Many2one(
        "crm.whatsapp.template",
        "WhatsApp Template",
        ondelete="set null",
        domain="[('status', '=', 'approved'), '|', ('model_id', '=', False), ('model_id', '=', model_id)]",
        help="Approved template sent to the record's contact; needed outside the 24-hour window.",
    )
    whatsapp_crm_body = fields.Text(
        "WhatsApp Message", help="Free text, only delivered to customers who wrote in the last 24 hours."
    )
    whatsapp_crm_send_now = fields.Boolean(
        "Send WhatsApp at Once",
        help="Send during the action itself instead of queueing for the background sender (the default)."
        " Several documents at once are always queued, to respect WhatsApp's rate limits.",
    )

    @api.depends("state")
    def _compute_available_model_ids(self):
        whatsapp_actions = self.filtered(lambda action: action.state == STATE)
        if whatsapp_actions:
            mail_models = self.env["ir.model"].search([("is_mail_thread", "=", True), ("transient", "=", False)])
            whatsapp_actions.available_model_ids = mail_models
        super(IrActionsServer, self - whatsapp_actions)._compute_available_model_ids()

    @api.constrains("state", "model_id", "whatsapp_crm_template_id", "whatsapp_crm_body")
    def _check_whatsapp_crm(self):
        for action in self.filtered(lambda action: action.state == STATE):
            if action.model_id.transient or not action.model_id.is_mail_thread:
                raise ValidationError(_("WhatsApp messages can only be sent from documents with a chatter."))
            if not action.whatsapp_crm_template_id and not action.whatsapp_crm_body:
                raise ValidationError(_("Choose a WhatsApp template or write a message."))
            template_model = action.whatsapp_crm_template_id.model_id
            if template_model and template_model != action.model_id:
                raise ValidationError(
                    _("The WhatsApp template of %(action)s is made for another model.", action=action.name)
                )

    def _run_action_whatsapp_crm_multi(self, eval_context=None):
        records = eval_context.get("records") or eval_context.get("record")
        if not records or self._is_recompute():
            return False
        account = (
            self.whatsapp_crm_account_id
            or self.whatsapp_crm_template_id.account_id
            or records._whatsapp_default_account()
        )
        if not account:
            # an automation must not block the change that triggered it (e.g. a lead from the website)
            _logger.info("Action %s: no WhatsApp account for %s, nothing sent.", self.name, records)
            return False
        records._message_whatsapp(
            body=self.whatsapp_crm_body or "",
            account=account,
            template=self.whatsapp_crm_template_id or None,
            send_now=self.whatsapp_crm_send_now and len(records) == 1,
        )
        return False
