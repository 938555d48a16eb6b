from odoo import fields, models

# The survey's default wording (Croatian); each account may reword and translate it.
CSAT_DEFAULTS = {
    "csat_question": "Kako ste zadovoljni našim razgovorom?",
    "csat_label_good": "Odlično",
    "csat_label_okay": "U redu",
    "csat_label_bad": "Loše",
    "csat_comment_question": "Hvala na ocjeni! Želite li nam napisati i komentar?",
}


class CrmWhatsappAccount(models.Model):
    """Wording of the satisfaction survey sent when a session closes."""

    _inherit = "crm.whatsapp.account"

    csat_enabled = fields.Boolean(
        "Ask for a Rating",
        help="When a chat session closes, ask the customer to rate it with three reply buttons "
        "(only inside the 24-hour window, or with the survey template).",
    )
    csat_question = fields.Text("Rating Question", translate=True, default=lambda self: CSAT_DEFAULTS["csat_question"])
    csat_label_good = fields.Char(
        "Good", size=20, translate=True, default=lambda self: CSAT_DEFAULTS["csat_label_good"]
    )
    csat_label_okay = fields.Char(
        "Okay", size=20, translate=True, default=lambda self: CSAT_DEFAULTS["csat_label_okay"]
    )
    csat_label_bad = fields.Char("Bad", size=20, translate=True, default=lambda self: CSAT_DEFAULTS["csat_label_bad"])
    csat_comment_question = fields.Text(
        "Comment Request",
        translate=True,
        default=lambda self: CSAT_DEFAULTS["csat_comment_question"],
        help="Sent after the customer's rating; their next text message is kept as the comment.",
    )
    csat_template_id = fields.Many2one(
        "crm.whatsapp.template",
        "Rating Template",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
        help="Approved template without variables asking for the rating outside the 24-hour window, "
        "with three quick-reply buttons titled like the three answers. Empty: no survey outside the window.",
    )

    def _csat_labels(self):
        """{rating value: button title} in the current language."""
        self.ensure_one()
        return {5: self.csat_label_good, 3: self.csat_label_okay, 1: self.csat_label_bad}
