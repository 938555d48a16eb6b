"""Every inbound message type, through the real webhook controller."""

import time
from datetime import datetime, timezone

from odoo.tests import tagged

from .common import new_wamid
from .webhook_common import CUSTOMER_NAME, CUSTOMER_WA_ID, WebhookCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookMessages(WebhookCase):
    def download(self, message, mimetype):
        """Run the media cron against the API mock; return the message's attachment."""
        info = {"url": f"https://lookaside.example/{message.media_id}?download=1", "mime_type": mimetype}
        with self.mock_whatsapp_api(responses={("GET", message.media_id): info}):
            self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual(message.media_state, "done")
        self.assertEqual(message.mail_message_id.attachment_ids, message.attachment_ids)
        return message.attachment_ids

    def test_text_creates_contact_conversation_lead(self):
        timestamp = int(time.time()) - 60
        message = self.receive(self.inbound("text", {"body": "Olá, quero um orçamento"}, timestamp=timestamp))
        self.assertInbound(message, "text", "Olá, quero um orçamento")
        self.assertEqual(message.timestamp, datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None))
        self.assertEqual(message.payload["text"]["body"], "Olá, quero um orçamento")
        partner = message.partner_id
        self.assertEqual(partner.name, CUSTOMER_NAME)
        self.assertEqual(partner._whatsapp_wa_id(), CUSTOMER_WA_ID)
        conversation = message.conversation_id
        self.assertEqual(conversation.wa_id, CUSTOMER_WA_ID)
        self.assertEqual(conversation.last_inbound_at, message.timestamp)
        self.assertTrue(conversation.can_send_free_text)
        self.assertEqual(conversation.user_id, self.user_salesman, "round-robin among the account's agents")
        lead = message.lead_id
        self.assertEqual(lead.name, f"WhatsApp: {CUSTOMER_NAME}")
        self.assertEqual(lead.user_id, self.user_salesman)
        self.assertIn("Olá, quero um orçamento", message.mail_message_id.body)

    def test_existing_partner_matched_by_number_variant(self):
        """Brazil: WhatsApp reports the mobile without its ninth digit; the contact has it."""
        partner = self.env["res.partner"].create({"name": "Joana (CRM)", "mobile": "+55 11 98765-4321"})
        message = self.receive(self.inbound("text", {"body": "oi"}, wa_id="551187654321"), wa_id="551187654321")
        self.assertEqual(message.partner_id, partner)
        self.assertEqual(self.env["res.partner"].search_count([("name", "=", CUSTOMER_NAME)]), 0)

    def test_image_media_downloaded_by_cron(self):
        cron = self.env.ref("whatsapp_crm.ir_cron_whatsapp_download_media")
        Trigger = self.env["ir.cron.trigger"]
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        with self.mock_whatsapp_api() as requests:
            message = self.receive(
                self.inbound(
                    "image",
                    {"id": "MEDIA-IMG-1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "Minha sala"},
                )
            )
        self.assertEqual(requests, [], "no call to WhatsApp while acknowledging")
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), triggers + 1, "download cron triggered")
        self.assertInbound(message, "image", "Image: Minha sala")
        self.assertEqual(message.media_state, "pending")
        self.assertFalse(message.attachment_ids, "no download inside the webhook request")
        responses = {("GET", "MEDIA-IMG-1"): {"url": "https://lookaside.example/img", "mime_type": "image/jpeg"}}
        with self.mock_whatsapp_api(responses=responses) as requests:
            self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual([r["path"] for r in requests], ["MEDIA-IMG-1", "https://lookaside.example/img"])
        self.assertEqual(message.media_state, "done")
        attachment = message.attachment_ids
        self.assertEqual(len(attachment), 1)
        self.assertEqual(attachment.raw, b"fake-media-bytes")
        self.assertEqual(attachment.mimetype, "image/jpeg")
        self.assertEqual(attachment.name, "image-MEDIA-IMG-1.jpg")
        self.assertEqual((attachment.res_model, attachment.res_id), ("crm.whatsapp.message", message.id))
        self.assertEqual(message.mail_message_id.attachment_ids, attachment, "shown in the chatter post too")
        self.assertEqual(message.media_preview, attachment.datas, "previewed in the lead's WhatsApp tab")

    def test_voice_audio(self):
        message = self.receive(
            self.inbound("audio", {"id": "MEDIA-AUD-1", "mime_type": "audio/ogg; codecs=opus", "voice": True})
        )
        self.assertInbound(message, "audio", "Voice message")
        responses = {("GET", "MEDIA-AUD-1"): {"url": "https://lookaside.example/aud", "mime_type": "audio/ogg"}}
        with self.mock_whatsapp_api(responses=responses):
            self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual(message.attachment_ids.name, "audio-MEDIA-AUD-1.ogg")
        self.assertEqual(message.attachment_ids.mimetype, "audio/ogg")

    def test_video(self):
        message = self.receive(self.inbound("video", {"id": "MEDIA-VID-1", "mime_type": "video/mp4"}))
        self.assertInbound(message, "video", "Video")
        attachment = self.download(message, "video/mp4")
        self.assertEqual((attachment.name, attachment.mimetype), ("video-MEDIA-VID-1.mp4", "video/mp4"))

    def test_document_keeps_filename(self):
        message = self.receive(
            self.inbound(
                "document",
                {"id": "MEDIA-DOC-1", "mime_type": "application/pdf", "filename": "planta.pdf", "caption": "A planta"},
            )
        )
        self.assertInbound(message, "document", "Document: A planta")
        responses = {("GET", "MEDIA-DOC-1"): {"url": "https://lookaside.example/doc", "mime_type": "application/pdf"}}
        with self.mock_whatsapp_api(responses=responses):
            self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual(message.attachment_ids.name, "planta.pdf")
        self.assertEqual(message.attachment_ids.mimetype, "application/pdf")

    def test_sticker(self):
        message = self.receive(
            self.inbound("sticker", {"id": "MEDIA-STK-1", "mime_type": "image/webp", "animated": False})
        )
        self.assertInbound(message, "sticker", "Sticker")
        attachment = self.download(message, "image/webp")
        self.assertEqual((attachment.name, attachment.mimetype), ("sticker-MEDIA-STK-1.webp", "image/webp"))

    def test_media_download_failure_retried_then_missing(self):
        message = self.receive(self.inbound("image", {"id": "MEDIA-GONE", "mime_type": "image/jpeg"}))
        Event = self.env["crm.whatsapp.message"]
        with self.mock_whatsapp_api(sim_error=self.api_error(131052)):
            Event._cron_download_media()
            self.assertEqual(message.media_state, "pending")
            self.assertEqual(message.media_attempts, 1)
            self.assertGreater(message.next_try_at, datetime.now())
            Event._cron_download_media()
            self.assertEqual(message.media_attempts, 1, "not retried before its backoff")
            for _attempt in range(4):
                message.next_try_at = False
                Event._cron_download_media()
        self.assertEqual(message.media_state, "missing")
        self.assertEqual(message.media_attempts, 5)
        self.assertTrue(message.exists(), "the message is kept")

    def test_media_of_account_without_token_does_not_block_others(self):
        """An account without access token fails its own downloads, not the cron for everybody."""
        blocked = self.receive(self.inbound("image", {"id": "MEDIA-NO-TOKEN", "mime_type": "image/jpeg"}))
        fine = self.receive(self.inbound("image", {"id": "MEDIA-OK", "mime_type": "image/jpeg"}))
        blocked.account_id = self.account.copy({"phone_number_id": "109000000000999", "access_token": False})
        self.download(fine, "image/jpeg")
        self.assertEqual(blocked.media_state, "pending")
        self.assertEqual(blocked.media_attempts, 1)
        self.assertIn("no access token", blocked.error_message)

    def test_location(self):
        message = self.receive(
            self.inbound(
                "location",
                {"latitude": -23.5505, "longitude": -46.6333, "name": "Escritório", "address": "Av. Paulista, 1000"},
            )
        )
        self.assertInbound(message, "location", "Escritório, Av. Paulista, 1000 (-23.5505, -46.6333)")

    def test_contacts(self):
        message = self.receive(
            self.inbound(
                "contacts",
                None,
                contacts=[
                    {
                        "name": {"formatted_name": "Carlos Lima", "first_name": "Carlos"},
                        "phones": [{"phone": "+55 21 99999-0000", "type": "CELL", "wa_id": "5521999990000"}],
                    },
                ],
            )
        )
        self.assertInbound(message, "contacts", "Carlos Lima: +55 21 99999-0000")

    def test_interactive_button_reply(self):
        message = self.receive(
            self.inbound("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Sim, quero"}})
        )
        self.assertInbound(message, "interactive", "Sim, quero")

    def test_interactive_list_reply(self):
        message = self.receive(
            self.inbound(
                "interactive",
                {"type": "list_reply", "list_reply": {"id": "p2", "title": "Plano Pro", "description": "R$ 99/mês"}},
            )
        )
        self.assertInbound(message, "interactive", "Plano Pro - R$ 99/mês")

    def test_interactive_flow_reply(self):
        message = self.receive(
            self.inbound(
                "interactive",
                {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"a": 1}'}},
            )
        )
        self.assertInbound(message, "interactive", "Sent")

    def test_template_quick_reply_button(self):
        sent = self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "direction": "outbound",
                "state": "delivered",
                "wamid": new_wamid(),
                "body": "Promo",
            }
        )
        message = self.receive(
            self.inbound(
                "button",
                {"payload": "STOP_PROMO", "text": "Parar promoções"},
                context={"from": "15550199", "id": sent.wamid},
            )
        )
        self.assertInbound(message, "button", "Parar promoções")
        self.assertEqual(message.reply_to_wamid, sent.wamid)
        self.assertEqual(message.reply_to_id, sent)

    def test_reaction_and_removal(self):
        original = self.receive(self.inbound("text", {"body": "Pode ser amanhã?"}))
        reaction = self.receive(self.inbound("reaction", {"message_id": original.wamid, "emoji": "👍"}))
        self.assertInbound(reaction, "reaction", "👍")
        self.assertEqual(reaction.reaction_to_id, original)
        self.assertIn("Pode ser amanhã?", reaction.mail_message_id.body)
        removal = self.receive(self.inbound("reaction", {"message_id": original.wamid}))
        self.assertInbound(removal, "reaction", "(reaction removed)")
        self.assertEqual(removal.reaction_to_id, original)

    def test_reply_and_forwarded(self):
        original = self.receive(self.inbound("text", {"body": "primeira"}))
        reply = self.receive(
            self.inbound(
                "text", {"body": "segunda"}, context={"from": CUSTOMER_WA_ID, "id": original.wamid, "forwarded": True}
            )
        )
        self.assertInbound(reply, "text", "segunda")
        self.assertEqual(reply.reply_to_id, original)
        self.assertTrue(reply.forwarded)
        self.assertEqual(reply.conversation_id, original.conversation_id)
        self.assertEqual(reply.lead_id, original.lead_id, "no_open_lead: one lead for the chat")

    def test_order(self):
        message = self.receive(
            self.inbound(
                "order",
                {
                    "catalog_id": "cat-1",
                    "text": "Pedido",
                    "product_items": [
                        {"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 10.5, "currency": "BRL"}
                    ],
                },
            )
        )
        self.assertInbound(message, "order", "Pedido\n2 x SKU-1 (10.5 BRL)")

    def test_system(self):
        first = self.receive(self.inbound("text", {"body": "my old number"}))
        message = self.receive(
            self.inbound(
                "system",
                {
                    "body": "User A changed from 5511987654321 to 5511987650000",
                    "wa_id": "5511987650000",
                    "type": "user_changed_number",
                },
            )
        )
        self.assertInbound(message, "system", "User A changed from 5511987654321 to 5511987650000")
        self.assertEqual(message.conversation_id, first.conversation_id)
        self.assertEqual(message.conversation_id.wa_id, "5511987650000", "the chat follows the new number")
        self.assertEqual(message.partner_id._whatsapp_wa_id(), "5511987650000")
        later = self.receive(
            self.inbound("text", {"body": "from the new one"}, wa_id="5511987650000"), wa_id="5511987650000"
        )
        self.assertEqual(later.conversation_id, first.conversation_id)

    def test_unsupported_keeps_errors(self):
        message = self.receive(
            self.inbound(
                "unsupported",
                None,
                errors=[
                    {
                        "code": 131051,
                        "title": "Message type unknown",
                        "error_data": {"details": "Message type is currently not supported."},
                    }
                ],
            )
        )
        self.assertInbound(
            message, "unsupported", "[131051] Message type unknown Message type is currently not supported."
        )
        self.assertEqual(message.error_code, 131051)

    def test_unknown_type_stored_as_unsupported(self):
        message = self.receive(self.inbound("hologram", {"id": "x"}))
        self.assertInbound(message, "unsupported", "(unsupported message)")
        self.assertEqual(message.payload["type"], "hologram")

    def test_message_without_sender_noted_not_failed(self):
        """No ``from`` and no contact: nothing to attach it to; the event notes it instead of failing
        and being retried for nothing."""
        message = self.inbound("text", {"body": "who am I?"})
        del message["from"]
        value = self.messages_value([message])
        del value["contacts"]
        self.assertEqual(self.post(self.envelope(value)).status_code, 200)
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertNotEqual(event.state, "failed")
        self.assertIn("no sender", event.error)
        self.assertFalse(self.env["crm.whatsapp.message"].search([("wamid", "=", message["id"])]))

    def test_revoke_marks_original(self):
        original = self.receive(self.inbound("text", {"body": "número errado"}))
        revoke = self.receive(self.inbound("revoke", {"original_message_id": original.wamid}))
        self.assertInbound(revoke, "revoke", "(message deleted)")
        self.assertEqual(revoke.reply_to_id, original)
        self.assertTrue(original.revoked)
        self.assertFalse(original.edited)
        self.assertIn("(deleted by the customer)", original.body)

    def test_edit_marks_original(self):
        original = self.receive(self.inbound("text", {"body": "amanha"}))
        edit = self.receive(
            self.inbound(
                "edit", {"original_message_id": original.wamid, "message": {"type": "text", "text": {"body": "amanhã"}}}
            )
        )
        self.assertInbound(edit, "edit", "amanhã")
        self.assertEqual(edit.reply_to_id, original)
        self.assertIn("(edited: amanhã)", original.body)
        self.assertTrue(original.edited)

    def test_click_to_whatsapp_referral(self):
        referral = {
            "source_url": "https://fb.me/ad",
            "source_id": "120200000001",
            "source_type": "ad",
            "headline": "Black Friday Sofás",
            "body": "50% off",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
        }
        message = self.receive(self.inbound("text", {"body": "Vi o anúncio"}, referral=referral))
        self.assertInbound(message, "text", "Vi o anúncio")
        self.assertEqual(message.referral_data["ctwa_clid"], "ARAkLkA8rmlFeiCktEJQ")
        lead = message.lead_id
        self.assertEqual(lead.medium_id, self.env.ref("whatsapp_crm.utm_medium_whatsapp_ad"))
        self.assertEqual(lead.campaign_id.name, "Black Friday Sofás")
        self.assertEqual(lead.whatsapp_ctwa_clid, "ARAkLkA8rmlFeiCktEJQ")
        self.assertEqual(lead.whatsapp_ad_id, "120200000001")

    def test_username_only_user(self):
        message = {
            "from_user_id": "US.13491208655302741918",
            "id": new_wamid(),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "hi from a username"},
        }
        value = self.messages_value([message])
        value["contacts"] = [{"profile": {"name": "Ana"}, "user_id": "US.13491208655302741918", "username": "@ana"}]
        self.assertEqual(self.post(self.envelope(value)).status_code, 200)
        stored = self.env["crm.whatsapp.message"].search([("wamid", "=", message["id"])])
        self.assertInbound(stored, "text", "hi from a username")
        self.assertEqual(stored.conversation_id.wa_user_id, "US.13491208655302741918")
        self.assertFalse(stored.conversation_id.wa_id)
        self.assertEqual(stored.partner_id.name, "Ana")
