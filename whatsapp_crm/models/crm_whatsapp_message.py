from odoo import api, fields, models

MESSAGE_TYPES = [
    ("text", "Text"),
    ("image", "Image"),
    ("audio", "Audio"),
    ("video", "Video"),
    ("document", "Document"),
    ("sticker", "Sticker"),
    ("location", "Location"),
    ("contacts", "Contacts"),
    ("interactive", "Interactive"),
    ("button", "Template Button"),
    ("reaction", "Reaction"),
    ("order", "Order"),
    ("system", "System"),
    ("unsupported", "Unsupported"),
    ("revoke", "Revoked"),
    ("edit", "Edited"),
    ("template", "Template"),
    ("call", "Call"),
]
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")

# Delivery progress: a status never moves to a lower rank. "failed" is final unless
# a later delivered/read proves the message arrived after all.
STATE_RANK = {"queued": 0, "failed": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}


class CrmWhatsappMessage(models.Model):
    _name = "crm.whatsapp.message"
    _description = "WhatsApp Message"
    _order = "timestamp desc, id desc"
    _rec_name = "wamid"

    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    conversation_id = fields.Many2one("crm.whatsapp.conversation", index=True, ondelete="cascade")
    partner_id = fields.Many2one("res.partner", "Contact", index=True)
    lead_id = fields.Many2one("crm.lead", "Lead", index=True)
    author_id = fields.Many2one("res.users", "Sent By")
    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], required=True, index=True)
    wamid = fields.Char("WhatsApp Message ID", index=True, copy=False)
    message_type = fields.Selection(MESSAGE_TYPES, required=True, default="text")
    body = fields.Text()
    timestamp = fields.Datetime(default=fields.Datetime.now, index=True, help="When WhatsApp says it happened.")
    state = fields.Selection(
        [
            ("received", "Received"),
            ("queued", "Queued"),
            ("sent", "Sent"),
            ("delivered", "Delivered"),
            ("read", "Read"),
            ("played", "Played"),
            ("failed", "Failed"),
            ("refused", "Refused"),
        ],
        default="queued",
        required=True,
        index=True,
    )
    status_timestamp = fields.Datetime(readonly=True)
    error_code = fields.Integer(readonly=True)
    error_message = fields.Text(readonly=True)
    retry_count = fields.Integer(readonly=True)
    next_try_at = fields.Datetime(readonly=True, index=True)
    attachment_ids = fields.Many2many("ir.attachment", string="Attachments")
    media_id = fields.Char("Media ID", help="Meta's id of the media of this message.")
    media_mimetype = fields.Char()
    media_filename = fields.Char()
    media_state = fields.Selection(
        [("none", "No Media"), ("pending", "To Download"), ("done", "Downloaded"), ("missing", "Missing")],
        default="none",
        required=True,
        index=True,
    )
    media_attempts = fields.Integer(readonly=True)
    reply_to_wamid = fields.Char("Reply To (WhatsApp ID)")
    reply_to_id = fields.Many2one("crm.whatsapp.message", "Reply To", ondelete="set null")
    reaction_to_id = fields.Many2one("crm.whatsapp.message", "Reaction To", ondelete="set null")
    forwarded = fields.Boolean()
    referral_data = fields.Json(help="Click-to-WhatsApp ad that started the chat.")
    payload = fields.Json(help="The message object as WhatsApp sent it, or the request sent to WhatsApp.")
    template_id = fields.Many2one("crm.whatsapp.template", ondelete="set null")
    pricing_category = fields.Char(readonly=True)
    wa_conversation_id = fields.Char("Meta Conversation ID", readonly=True)
    mail_message_id = fields.Many2one("mail.message", "Chatter Message", ondelete="set null", index="btree_not_null")

    _sql_constraints = [
        ("wamid_account_unique", "unique(account_id, wamid)", "A WhatsApp message is stored once per account."),
    ]

    @api.depends("direction", "message_type", "partner_id")
    def _compute_display_name(self):
        for message in self:
            message.display_name = f"{message.partner_id.name or message.wamid or ''} [{message.message_type}]"
