"""WhatsApp account: secret fields, webhook URL, "Test connection" and the token flag."""

import logging
import socket
from contextlib import nullcontext
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, WhatsappCase, WhatsappEmulatorMixin

SECRET_FIELDS = ("access_token", "app_secret", "verify_token")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestCrmWhatsappAccount(WhatsappEmulatorMixin, WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_admin = new_test_user(
            cls.env, login="wa_admin", groups="base.group_system,sales_team.group_sale_manager", name="Ada Admin"
        )

    def click_test_connection(self):
        """Call "Test connection" as the admin; return the UserError's message or the action."""
        try:
            return self.account.with_user(self.user_admin).action_test_connection()
        except UserError as error:  # no savepoint: keep what was written before the error
            return str(error)

    # Secrets
    def test_secrets_hidden_from_salesman(self):
        account = self.account.with_user(self.user_salesman)
        self.assertEqual(account.read(["name"])[0]["name"], "Test line")
        fields_info = account.fields_get()
        for field in SECRET_FIELDS:
            with self.subTest(field=field):
                self.assertNotIn(field, fields_info)
                self.assertNotIn(field, account.read()[0])
                self.assertNotIn(field, account.search_read([("id", "=", account.id)])[0])
                with self.assertRaises(AccessError):
                    account.read([field])
                with self.assertRaises(AccessError):
                    account.search([(field, "=", "anything")])

    def test_secrets_absent_from_salesman_form(self):
        views = self.env["crm.whatsapp.account"].with_user(self.user_salesman).get_views([(False, "form")])
        arch = views["views"]["form"]["arch"]
        self.assertIn('name="waba_id"', arch)
        for field in SECRET_FIELDS:
            self.assertNotIn(f'name="{field}"', arch)
        with self.assertRaises(AccessError):
            self.account.with_user(self.user_salesman).web_read({"access_token": {}})

    def test_secrets_visible_to_admin(self):
        account = self.account.with_user(self.user_admin)
        self.assertTrue(set(SECRET_FIELDS) <= set(account.fields_get()))
        values = account.read(["access_token", "app_secret", "verify_token"])[0]
        self.assertEqual((values["access_token"], values["app_secret"]), (ACCESS_TOKEN, APP_SECRET))
        self.assertTrue(values["verify_token"])
        arch = account.get_views([(False, "form")])["views"]["form"]["arch"]
        for field in SECRET_FIELDS:
            self.assertIn(f'name="{field}"', arch)

    def test_webhook_url(self):
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "https://crm.example.com")
        self.account.invalidate_recordset(["webhook_url"])
        self.assertEqual(
            self.account.with_user(self.user_salesman).webhook_url, "https://crm.example.com/whatsapp_crm/webhook"
        )
        self.assertTrue(self.account._fields["webhook_url"].readonly)

    # Test connection
    def test_connection_with_emulator(self):
        self.start_emulator(
            display_phone_number="+1 555-0199", verified_name="Acme Sales", quality_rating="YELLOW",
            messaging_limit_tier="TIER_10K",
        )  # fmt: skip
        self.account.token_invalid = True
        action = self.click_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(
            action["params"]["message"],
            f"{self.account.api_base_url}/{self.account.api_version}/{PHONE_NUMBER_ID} answered: "
            "+1 555-0199 (Acme Sales), Medium quality, messaging limit: 10,000 customers a day",
        )
        self.assertRecordValues(
            self.account,
            [
                {
                    "display_phone_number": "+1 555-0199",
                    "verified_name": "Acme Sales",
                    "quality_rating": "YELLOW",
                    "messaging_limit_tier": "TIER_10K",
                    "token_invalid": False,
                }
            ],
        )

    def test_connection_with_mock(self):
        details = {"display_phone_number": "+1 555 0142", "verified_name": "Mocked", "quality_rating": "GREEN"}
        with self.mock_whatsapp_api(responses={("GET", PHONE_NUMBER_ID): details}) as calls:
            action = self.click_test_connection()
        self.assertEqual([(c["method"], c["path"]) for c in calls], [("GET", PHONE_NUMBER_ID)])
        self.assertIn("verified_name", calls[0]["params"]["fields"])
        self.assertIn("+1 555 0142 (Mocked), High quality", action["params"]["message"])
        self.assertEqual(self.account.verified_name, "Mocked")

    def test_connection_invalid_token(self):
        self.start_emulator(access_token="the-new-token")
        messages_before = len(self.account.message_ids)
        error = self.click_test_connection()
        self.assertIsInstance(error, str)
        self.assertIn("access token is invalid or expired", error)
        self.assertTrue(self.account.token_invalid)
        self.assertEqual(len(self.account.message_ids), messages_before + 1, "the chatter tells it once")
        self.click_test_connection()
        self.assertEqual(len(self.account.message_ids), messages_before + 1)
        # pasting a new token clears the flag; the test then succeeds
        self.account.access_token = "the-new-token"
        self.assertFalse(self.account.token_invalid)
        self.assertEqual(self.click_test_connection()["params"]["type"], "success")

    def test_token_flag_survives_rollback(self):
        """The button's UserError rolls the transaction back; the flag is written again after."""
        self.start_emulator(access_token="another-token")
        callbacks = self.env.cr.postrollback._funcs
        with self.assertRaises(UserError):  # rolls back its savepoint, as a request rolls back
            self.account.with_user(self.user_admin).action_test_connection()
        self.assertFalse(self.account.token_invalid)
        flag = callbacks.pop()  # what the rollback of a real request's cursor would run
        with patch.object(type(self.registry), "cursor", lambda registry, *args: nullcontext(self.env.cr)):
            flag()
        self.account.invalidate_recordset(["token_invalid"])
        self.assertTrue(self.account.token_invalid)

    def test_connection_failure_in_words(self):
        with self.mock_whatsapp_api(sim_error=self.api_error(133010, "Account not registered")):
            error = self.click_test_connection()
        self.assertIn("not registered with the WhatsApp Cloud API", error)
        self.assertIn("Account not registered", error)
        self.assertFalse(self.account.token_invalid, "only token errors flag the account")

    def test_connection_unreachable(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.account.api_base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with self.assertLogs("odoo.addons.whatsapp_crm.tools.whatsapp_cloud_api", logging.INFO) as logs:
            with self.assertRaises(UserError) as caught:
                self.account.with_user(self.user_admin).action_test_connection()
        message = str(caught.exception)
        self.assertIn(f"Test connection to {self.account.api_base_url}/", message, "it names the URL it tried")
        self.assertIn("nothing answers at this address", message)
        self.assertNotIn("retried", message, "a connection test is never retried")
        self.assertNotIn(ACCESS_TOKEN, "\n".join(logs.output))

    def test_connection_without_token(self):
        self.account.access_token = False
        with self.assertRaises(UserError):
            self.account.action_test_connection()

    def test_handle_api_error(self):
        self.assertFalse(self.account._handle_api_error(self.api_error(131047)))
        self.assertFalse(self.account.token_invalid)
        self.assertTrue(self.account._handle_api_error(self.api_error(190, http_status=401)))
        self.assertTrue(self.account.token_invalid)

    # Help where users need it
    def test_meta_values_in_words(self):
        self.account.write({"quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K"})
        self.assertRecordValues(
            self.account, [{"quality_label": "High quality", "messaging_limit_label": "1,000 customers a day"}]
        )
        self.account.write({"quality_rating": "PURPLE", "messaging_limit_tier": False})
        self.assertRecordValues(self.account, [{"quality_label": "PURPLE", "messaging_limit_label": False}])

    def test_webhook_url_warning_unless_public_https(self):
        ICP = self.env["ir.config_parameter"].sudo()
        for base_url, warned in (
            ("https://crm.example.com", False),
            ("http://crm.example.com", True),
            ("https://localhost:8069", True),
            ("https://192.168.1.20", True),
            ("https://odoo.local", True),
        ):
            with self.subTest(base_url=base_url):
                ICP.set_param("web.base.url", base_url)
                self.account.invalidate_recordset(["webhook_url", "webhook_url_warning"])
                self.assertEqual(bool(self.account.webhook_url_warning), warned)

    def test_every_meta_field_has_help(self):
        fields_info = self.env["crm.whatsapp.account"].fields_get()
        for name in (
            "waba_id", "phone_number_id", "display_phone_number", "verified_name", "quality_label",
            "messaging_limit_label", "access_token", "app_secret", "verify_token", "api_base_url", "api_version",
            "webhook_url",
        ):  # fmt: skip
            with self.subTest(field=name):
                self.assertTrue(fields_info[name].get("help"))
