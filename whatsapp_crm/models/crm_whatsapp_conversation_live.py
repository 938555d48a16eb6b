"""Live: whatever changes what a user sees of a conversation is pushed on Odoo's bus to the
people concerned (the assignee, the lead's followers, the team of an unassigned chat), once per
transaction, just before it commits."""

from odoo import _, api, models
from odoo.exceptions import MissingError

from odoo.addons.mail.tools.discuss import Store

LIVE_KEY = "whatsapp_crm.live"
NOTIFICATION_TYPE = "whatsapp_crm/update"
# fields the inbox, the chat or the systray show
LIVE_FIELDS = {
    "user_id", "team_id", "state", "tag_ids", "unread_count", "last_message_preview", "waiting_since",
    "lead_id", "partner_id", "last_inbound_at",
}  # fmt: skip


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    @api.model_create_multi
    def create(self, vals_list):
        conversations = super().create(vals_list)
        self._whatsapp_live(
            conversations=conversations,
            notify=[(c.user_id, c) for c in conversations if c.user_id and c.user_id != self.env.user],
        )
        return conversations

    def write(self, vals):
        touched = LIVE_FIELDS & vals.keys()
        before = self._whatsapp_live_recipients() if "user_id" in vals or "team_id" in vals else {}
        result = super().write(vals)
        if touched:
            self._whatsapp_live(conversations=self, partners=before)
        if vals.get("user_id") and vals["user_id"] != self.env.uid:
            self._whatsapp_live(notify=[(conversation.user_id, conversation) for conversation in self])
        return result

    def unlink(self):
        self._whatsapp_live_unlinked()
        return super().unlink()

    @api.model
    def _whatsapp_live(self, conversations=None, messages=None, notify=None, partners=None, notes=None, posted=None):
        """Remember what changed; one push per recipient when the transaction commits.

        :param notes: internal notes (``mail.message``) logged on ``conversations``
        :param notify: ``[(user, message or conversation)]``: an Odoo notification for ``user``
        :param partners: ``{conversation: partners}`` told as well (who saw it before a transfer)
        :param posted: ``{message: thread}``: where messages were just posted (else read from
            their ``mail.message``)
        """
        data = self.env.cr.precommit.data
        if LIVE_KEY not in data:
            data[LIVE_KEY] = {
                "conversations": set(), "messages": set(), "notes": set(), "notify": [], "partners": {},
                "posted": {}, "unlinked": False,
            }  # fmt: skip
            env = self.env

            @self.env.cr.precommit.add
            def push():
                changes = data.pop(LIVE_KEY, None)
                if changes:
                    env["crm.whatsapp.conversation"].sudo()._whatsapp_live_push(changes)

        changes = data[LIVE_KEY]
        if conversations:
            changes["conversations"].update(conversations.ids)
        if messages:
            changes["messages"].update(messages.ids)
            changes["conversations"].update(messages.conversation_id.ids)
        if notes:
            changes["notes"].update(notes.ids)
        for conversation, extra in (partners or {}).items():
            changes["partners"].setdefault(conversation.id, set()).update(extra.ids)
        for user, record in notify or ():
            changes["notify"].append((user.id, record._name, record.id))
        for message, thread in (posted or {}).items():
            changes["posted"][message.id] = (thread._name, thread.id)

    @api.model
    def _whatsapp_live_unlinked(self):
        """Records are deleted in this transaction: the push checks which of its records still
        exist (otherwise, records it was told of exist: it saves those queries)."""
        if LIVE_KEY in self.env.cr.precommit.data:
            self.env.cr.precommit.data[LIVE_KEY]["unlinked"] = True

    def _whatsapp_live_recipients(self):
        """``{conversation: partners}`` who see these conversations: assignee, followers of the
        lead who are users, and the team's members while nobody owns the chat."""
        recipients = {}
        for conversation in self:
            partners = conversation.user_id.partner_id
            lead = conversation.lead_id
            if lead:
                partners |= lead.message_partner_ids.filtered(lambda p: p.user_ids and not p.partner_share)
            if not conversation.user_id:
                team = conversation.team_id or conversation.account_id.team_id
                partners |= team.crm_team_member_ids.user_id.partner_id | team.user_id.partner_id
            recipients[conversation] = partners
        return recipients

    def _whatsapp_live_push(self, changes):
        try:
            payloads, stores = self._whatsapp_live_payloads(changes, check=changes["unlinked"])
        except MissingError:  # deleted behind the ORM's back (a database cascade): what is left
            payloads, stores = self._whatsapp_live_payloads(changes, check=True)
        Bus = self.env["bus.bus"].sudo()
        for partner, payload in payloads.items():
            Bus._sendone(partner, NOTIFICATION_TYPE, payload)
        for partner, store in stores:
            partner._bus_send_store(store)

    def _whatsapp_live_payloads(self, changes, check):
        """``({partner: payload}, [(partner, store)])``: what to push, computed without sending
        anything. ``check``: keep only the records that still exist (a query per model)."""
        Message = self.env["crm.whatsapp.message"].sudo()
        conversations = self.browse(changes["conversations"])
        messages = Message.browse(changes["messages"])
        if check:
            conversations, messages = conversations.exists(), messages.exists()
        per_partner = {}
        recipients = conversations._whatsapp_live_recipients()
        Partner = self.env["res.partner"].sudo()
        for conversation_id, partner_ids in changes["partners"].items():
            conversation = self.browse(conversation_id)
            if conversation in recipients:
                recipients[conversation] |= Partner.browse(partner_ids)
        by_conversation = messages.grouped("conversation_id")
        notes = self.env["mail.message"].sudo().browse(changes.get("notes", ())).exists()
        notes_by_conversation = notes.filtered(lambda n: n.model == self._name).grouped("res_id")
        for conversation, partners in recipients.items():
            mine = by_conversation.get(conversation, Message)
            note_ids = notes_by_conversation.get(conversation.id, notes.browse()).ids
            threads = {(conversation._name, conversation.id)}
            for message in mine.filtered("mail_message_id"):
                posted = changes["posted"].get(message.id)
                threads.add(posted or (message.mail_message_id.model, message.mail_message_id.res_id))
            for partner in partners:
                entry = per_partner.setdefault(partner, self._whatsapp_live_entry())
                entry["conversation_ids"].add(conversation.id)
                entry["message_ids"].update(mine.ids)
                entry["note_ids"].update(note_ids)
                entry["threads"].update(threads)
        notifications = {}
        users = self.env["res.users"].sudo()
        for user_id, model, record_id in changes["notify"]:
            user = users.browse(user_id)
            record = self.env[model].sudo().browse(record_id)
            if check:
                record = record.exists()
            if record and user.partner_id:
                notifications[user.partner_id] = record._whatsapp_live_notification()
        payloads = {}
        for partner in set(per_partner) | set(notifications):
            entry = per_partner.get(partner) or self._whatsapp_live_entry()
            payloads[partner] = {
                "conversation_ids": sorted(entry["conversation_ids"]),
                "message_ids": sorted(entry["message_ids"]),
                "note_ids": sorted(entry["note_ids"]),
                "threads": sorted([model, res_id] for model, res_id in entry["threads"] if model and res_id),
            }
            if partner in notifications:
                payloads[partner]["notification"] = notifications[partner]
        # the delivery status of chatter notes, wherever they are displayed (Odoo tells only the
        # author and the current user, here the system)
        stores = []
        for message in messages.filtered(lambda m: m.direction == "outbound" and m.mail_message_id):
            store = Store()
            message.mail_message_id._message_notifications_to_store(store)
            stores += [(partner, store) for partner in recipients.get(message.conversation_id, ())]
        return payloads, stores

    @api.model
    def _whatsapp_live_entry(self):
        return {"conversation_ids": set(), "message_ids": set(), "note_ids": set(), "threads": set()}

    def _whatsapp_live_notification(self):
        self.ensure_one()
        return {
            "conversation_id": self.id,
            "title": _("New WhatsApp conversation"),
            "message": self.display_name,
        }
