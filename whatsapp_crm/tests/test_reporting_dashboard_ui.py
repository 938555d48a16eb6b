from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from .common import WhatsappCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestReportingDashboardUi(HttpCase, WhatsappCase):
    """In a browser, as a manager: the WhatsApp spreadsheet dashboard renders its figures."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        now = fields.Datetime.now()
        Session = cls.env["crm.whatsapp.session"]
        # three chats of the last days, answered in 10, 30 and 50 minutes, the last one late
        for index, (minutes, status) in enumerate(((10, "met"), (30, "met"), (50, "missed"))):
            conversation = cls.env["crm.whatsapp.conversation"].create(
                {"account_id": cls.account.id, "wa_id": f"38591200000{index}", "user_id": cls.user_salesman.id}
            )
            opened = now - timedelta(days=index + 1)
            Session.create(
                {
                    "conversation_id": conversation.id,
                    "account_id": cls.account.id,
                    "user_id": cls.user_salesman.id,
                    "first_inbound_at": opened,
                    "first_response_at": opened + timedelta(minutes=minutes),
                    "first_response_minutes": minutes,
                    "sla_minutes": 40,
                    "sla_status": status,
                }
            )

    def test_dashboard_renders_its_figures(self):
        self.start_tour(
            "/odoo/action-spreadsheet_dashboard.ir_actions_dashboard_action",
            "whatsapp_crm_dashboard_tour",
            login=self.user_manager.login,
        )
