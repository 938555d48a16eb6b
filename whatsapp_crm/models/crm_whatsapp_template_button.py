from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.whatsapp_template import placeholders

MAX_BUTTON_TEXT = 25


class CrmWhatsappTemplateButton(models.Model):
    _name = "crm.whatsapp.template.button"
    _description = "WhatsApp Template Button"
    _order = "template_id, sequence, id"

    template_id = fields.Many2one("crm.whatsapp.template", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    button_type = fields.Selection(
        [
            ("quick_reply", "Quick Reply"),
            ("url", "Visit Website"),
            ("phone_number", "Call Phone Number"),
            ("copy_code", "Copy Offer Code"),
        ],
        "Type",
        required=True,
        default="quick_reply",
    )
    text = fields.Char("Button Text", help="What the customer reads on the button (at most 25 characters).")
    url = fields.Char("URL", help="May end with {{1}}: a variable completes it for each message.")
    phone_number = fields.Char(help="Number called, in international format (+...).")
    example = fields.Char("Offer Code", help="The code copied by the customer; also Meta's example.")

    @api.constrains("button_type", "text", "url", "phone_number")
    def _check_button(self):
        for button in self:
            if button.button_type != "copy_code" and not button.text:
                raise ValidationError(_("A button of template %s needs a text.", button.template_id.display_name))
            if button.text and len(button.text) > MAX_BUTTON_TEXT:
                raise ValidationError(
                    _(
                        "The button text %(text)s has more than %(max)s characters.",
                        text=button.text,
                        max=MAX_BUTTON_TEXT,
                    )
                )
            if button.button_type == "url" and not (button.url or "").startswith(("https://", "http://")):
                raise ValidationError(_("The URL of the button %s must start with https://.", button.text))
            if button.button_type == "url" and len(placeholders(button.url)) > 1:
                raise ValidationError(_("The URL of the button %s has at most one variable, at its end.", button.text))
            if button.button_type == "phone_number" and not (button.phone_number or "").startswith("+"):
                raise ValidationError(_("The phone number of the button %s must start with +.", button.text))

    def _index(self):
        """Position of this button among its template's buttons, as Meta counts them (from 0)."""
        self.ensure_one()
        return list(self.template_id.button_ids).index(self)

    def _as_dict(self):
        """The button as :mod:`..tools.whatsapp_template` reads it."""
        self.ensure_one()
        return {
            "button_type": self.button_type,
            "text": self.text or "",
            "url": self.url or False,
            "phone_number": self.phone_number or False,
            "example": self.example or False,
        }
