from odoo import http


class WhatsappCrmWebhook(http.Controller):
    pass
