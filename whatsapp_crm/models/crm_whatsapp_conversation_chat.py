"""The chat of a conversation as the web client's chat component reads it: bubbles, statuses,
media, reactions, quotes; the reply box's sends; the customer card beside it."""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import html2plaintext

CHAT_PAGE = 100  # a few screens: older ones load as the user scrolls up
CHAT_MODELS = ("crm.lead", "res.partner", "crm.whatsapp.conversation")
HIDDEN_TYPES = ("reaction", "edit", "system")
CARD_LIMIT = 5


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    # ------------------------------------------------------------
    # Finding the chat of a document
    # ------------------------------------------------------------

    @api.model
    def whatsapp_chat_resolve(self, res_model, res_id):
        """The conversations of a lead, contact or conversation, latest first."""
        if res_model not in CHAT_MODELS:
            raise AccessError(_("WhatsApp chats are shown on leads, contacts and conversations only."))
        record = self.env[res_model].browse(res_id).exists()
        if not record:
            return []
        record.check_access("read")
        if res_model == self._name:
            conversations = record
        elif res_model == "crm.lead":
            conversations = record.whatsapp_conversation_ids or record.partner_id.whatsapp_conversation_ids
        else:
            conversations = record.whatsapp_conversation_ids
        conversations = conversations._filtered_access("read")
        return [
            {"id": c.id, "name": c.display_name, "account": c.account_id.name}
            for c in conversations.sorted(lambda c: (c.last_message_at or fields.Datetime.to_datetime(0), c.id), True)
        ]

    # ------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------

    def whatsapp_chat_load(self, before_id=None, limit=CHAT_PAGE, mark_read=True):
        """The latest messages (older than ``before_id``), oldest first, and the conversation's header.

        Opening the chat marks the customer's messages read, at WhatsApp too (once, by a cron).
        """
        self.ensure_one()
        self.check_access("read")
        limit = min(int(limit or CHAT_PAGE), CHAT_PAGE)
        Message = self._whatsapp_chat_message_model()
        domain = [("conversation_id", "=", self.id), ("message_type", "not in", HIDDEN_TYPES)]
        before = Message
        if before_id:
            before = Message.browse(int(before_id))
            domain += [
                "|",
                ("timestamp", "<", before.timestamp),
                "&",
                ("timestamp", "=", before.timestamp),
                ("id", "<", before.id),
            ]
        fnames = [
            "direction", "message_type", "body", "timestamp", "state", "author_id", "error_message",
            "attachment_ids", "reply_to_id", "template_id", "forwarded", "revoked", "edited", "media_state",
            "media_filename", "buttons",
        ]  # fmt: skip
        messages = Message.search_fetch(domain, fnames, order="timestamp desc, id desc", limit=limit + 1)
        has_more = len(messages) > limit
        messages = messages[:limit][::-1]
        if mark_read:
            self._whatsapp_chat_mark_read()
        # the internal notes of the same stretch of time
        notes = self._whatsapp_chat_notes(
            since=messages[:1].timestamp if has_more else None, until=before.timestamp or None
        )
        return {
            "conversation": self._whatsapp_chat_header(),
            "messages": messages._whatsapp_chat_values(),
            "notes": notes,
            "has_more": has_more,
        }

    def whatsapp_chat_messages(self, message_ids, note_ids=None):
        """Some messages and notes again (new ones, or a status that moved), as
        :meth:`whatsapp_chat_load`."""
        self.ensure_one()
        self.check_access("read")
        messages = self._whatsapp_chat_message_model().search(
            [("id", "in", list(message_ids)), ("conversation_id", "=", self.id)], order="timestamp, id"
        )
        visible = messages.filtered(lambda m: m.message_type not in HIDDEN_TYPES)
        # a reaction changes the bubble it reacts to
        visible |= messages.reaction_to_id.filtered(lambda m: m.conversation_id == self)
        return {
            "conversation": self._whatsapp_chat_header(),
            "messages": visible._whatsapp_chat_values(),
            "notes": self._whatsapp_chat_notes(note_ids=note_ids) if note_ids else [],
        }

    def whatsapp_chat_mark_read(self):
        self.ensure_one()
        self.check_access("read")
        self._whatsapp_chat_mark_read()
        return True

    def _whatsapp_chat_mark_read(self):
        # WhatsApp marks every earlier message read with the latest one: only that one matters
        latest = self._whatsapp_chat_message_model().search(
            [("conversation_id", "=", self.id), ("direction", "=", "inbound"), ("wamid", "!=", False)],
            order="timestamp desc, id desc",
            limit=1,
        )
        latest._whatsapp_mark_read()
        if self.unread_count:
            # sudo: the counter is the system's; reading the chat is what resets it
            self.sudo().unread_count = 0

    def _whatsapp_chat_message_model(self):
        """The messages of this conversation, once the user is known to read it.

        sudo: a message is read on the terms of its conversation (its record rules are those of
        the conversation, through ``conversation_id``, and its company is the conversation's), so
        the conversation's access, checked by the caller, is theirs; applying the messages' rules
        again would scan the conversations once per query of the chat."""
        return self.env["crm.whatsapp.message"].sudo()

    def _whatsapp_chat_header(self):
        self.ensure_one()
        return {
            "id": self.id,
            "name": self.display_name,
            "customer": self.partner_id.name or self.profile_name or "",
            "number": f"+{self.wa_id}" if self.wa_id else "",
            "partner_id": self.partner_id.id,
            "lead_id": self.lead_id.id,
            "lead_name": self.lead_id.name or "",
            "user": self.user_id.name or "",
            "team": self.team_id.name or "",
            "account": self.account_id.name,
            "state": self.state,
            "window_expires_at": fields.Datetime.to_string(self.window_expires_at) if self.window_expires_at else False,
            "can_send_free_text": self.can_send_free_text,
            "unread_count": self.unread_count,
            "templates": self._whatsapp_chat_templates() if not self.can_send_free_text else [],
        }

    def _whatsapp_chat_templates(self):
        templates = self.env["crm.whatsapp.template"].search(
            [
                ("account_id", "=", self.account_id.id),
                ("status", "=", "approved"),
                ("model", "in", [False, self._name, "crm.lead", "res.partner"]),
            ]
        )
        return [{"id": t.id, "name": t.display_name, "body": t.body or ""} for t in templates]

    # ------------------------------------------------------------
    # Sending from the reply box
    # ------------------------------------------------------------

    def whatsapp_chat_send(self, body=None, attachment_ids=None, reply_to_id=None, template_id=None, reaction=None):
        """Send what the reply box holds, through the send API; return the bubbles to show.

        :param reaction: an emoji reacting to ``reply_to_id`` (an empty string removes ours)
        """
        self.ensure_one()
        self.check_access("read")
        attachments = self.env["ir.attachment"].browse(attachment_ids or []).exists()
        if not (body or "").strip() and not attachments and not template_id and reaction is None:
            raise UserError(_("Write a message first."))
        reply_to = self.env["crm.whatsapp.message"].browse(reply_to_id or []).exists()
        if reply_to and reply_to.conversation_id != self:
            raise AccessError(_("You can only reply to a message of this conversation."))
        if reaction is not None:
            self._message_whatsapp(
                body=reaction, account=self.account_id, reaction_to=reply_to, send_now=True, raise_exception=True
            )
            return reply_to._whatsapp_chat_values()
        if template_id:
            template = self.env["crm.whatsapp.template"].browse(template_id).exists()
            # the template's variables are read on the document it is made for
            record = {"crm.lead": self.lead_id, "res.partner": self.partner_id}.get(template.model) or self
            messages = record._message_whatsapp(
                account=self.account_id, template=template, send_now=True, raise_exception=True
            )
        else:
            messages = self._message_whatsapp(
                body=(body or "").strip(),
                account=self.account_id,
                attachments=attachments or None,
                reply_to=reply_to or None,
                send_now=True,
                raise_exception=True,
            )
        return messages.filtered(lambda m: m.conversation_id == self)._whatsapp_chat_values()

    # ------------------------------------------------------------
    # The customer card
    # ------------------------------------------------------------

    def whatsapp_customer_card(self):
        """Who the customer is, and what the other channels say about them."""
        self.ensure_one()
        self.check_access("read")
        partner = self.partner_id
        card = {
            "conversation_id": self.id,
            "partner": False,
            "leads": [],
            "activities": [],
            "messages": [],
            "orders": [],
            "consent": self._whatsapp_card_consent(),
        }
        if not partner or not partner.has_access("read"):
            return card
        company = partner.commercial_partner_id
        card["partner"] = {
            "id": partner.id,
            "name": partner.name,
            "company": company.name if company != partner else (partner.parent_id.name or ""),
            "email": partner.email or "",
            "phone": partner.mobile or partner.phone or "",
            "tags": partner.category_id.mapped("name"),
            "salesperson": partner.user_id.name or "",
        }
        Lead = self.env["crm.lead"]
        leads = Lead.search(
            [("partner_id", "child_of", company.id), "|", ("stage_id.is_won", "=", True), ("active", "=", True)],
            order="create_date desc",
            limit=CARD_LIMIT * 2,
        )
        card["leads"] = [
            {
                "id": lead.id,
                "name": lead.name,
                "stage": lead.stage_id.name or "",
                "won": lead.stage_id.is_won,
                "revenue": lead.expected_revenue,
                "currency": lead.company_currency.symbol or "",
                "user": lead.user_id.name or "",
                "current": lead == self.lead_id,
            }
            for lead in leads
        ]
        threads = [("res.partner", partner.id)] + [("crm.lead", lead.id) for lead in leads]
        thread_domain = ["|"] * (len(threads) - 1)
        for model, res_id in threads:
            thread_domain += ["&", ("model", "=", model), ("res_id", "=", res_id)]
        activity_domain = ["|"] * (len(threads) - 1)
        for model, res_id in threads:
            activity_domain += ["&", ("res_model", "=", model), ("res_id", "=", res_id)]
        activities = self.env["mail.activity"].search(activity_domain, order="date_deadline", limit=CARD_LIMIT)
        card["activities"] = [
            {
                "summary": activity.summary or activity.activity_type_id.name or "",
                "date": fields.Date.to_string(activity.date_deadline),
                "user": activity.user_id.name or "",
                "state": activity.state,
            }
            for activity in activities
        ]
        whatsapp_posts = self.env["crm.whatsapp.message"].search([("partner_id", "=", partner.id)]).mail_message_id
        mail_messages = self.env["mail.message"].search(
            [
                *thread_domain,
                ("message_type", "in", ("email", "comment")),
                ("id", "not in", whatsapp_posts.ids),
                ("body", "!=", False),
            ],
            order="date desc",
            limit=CARD_LIMIT,
        )
        card["messages"] = [
            {
                "date": fields.Datetime.to_string(message.date),
                "author": message.author_id.name or "",
                "kind": "email" if message.message_type == "email" else "note",
                "subject": message.subject or message.record_name or "",
                "preview": html2plaintext(message.body or "")[:140],
            }
            for message in mail_messages
        ]
        card["orders"] = self._whatsapp_card_orders(company)
        return card

    def _whatsapp_card_consent(self):
        """The consent state, where the consent feature is installed."""
        if "whatsapp_consent_state" in self._fields:
            field = self._fields["whatsapp_consent_state"]
            return dict(field._description_selection(self.env)).get(self.whatsapp_consent_state) or False
        return False

    def _whatsapp_card_orders(self, company):
        """Recent quotations and orders, only where the Sales app is installed."""
        if "sale.order" not in self.env:
            return []
        SaleOrder = self.env["sale.order"]
        if not SaleOrder.has_access("read"):
            return []
        orders = SaleOrder.search([("partner_id", "child_of", company.id)], order="date_order desc", limit=CARD_LIMIT)
        states = dict(SaleOrder._fields["state"]._description_selection(self.env))
        return [
            {
                "id": order.id,
                "name": order.name,
                "state": states.get(order.state, order.state),
                "amount": order.amount_total,
                "currency": order.currency_id.symbol or "",
                "date": fields.Datetime.to_string(order.date_order),
            }
            for order in orders
        ]

    def whatsapp_action_create_lead(self):
        """Create the conversation's lead now (one click from the chat) and open it."""
        self.ensure_one()
        self.check_access("write")
        if not self.lead_id or not self.lead_id.active:
            self.lead_id = self.env["crm.lead"].create(self._lead_values())
        return self.action_open_lead()

    def action_open_lead(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "views": [[False, "form"]],
            "target": "current",
        }

    # ------------------------------------------------------------
    # Systray
    # ------------------------------------------------------------

    @api.model
    def whatsapp_systray_data(self):
        """Unread customer messages of my chats and of my teams' unassigned chats."""
        user = self.env.user
        domain = [
            ("unread_count", ">", 0),
            ("state", "!=", "closed"),
            "|",
            ("user_id", "=", user.id),
            "&",
            ("user_id", "=", False),
            ("team_id.crm_team_member_ids.user_id", "=", user.id),
        ]
        [(unread, count)] = self._read_group(domain, [], ["unread_count:sum", "__count"])
        return {"unread": unread or 0, "conversations": count}
