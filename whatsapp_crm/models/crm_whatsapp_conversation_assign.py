"""Who owns a conversation: the team's available members in turn, reassignment of chats left
waiting, the first business reply, and the lead that follows its conversation's owner."""

from datetime import timedelta

from odoo import _, api, fields, models

from ..tools.phone import wa_region

OPEN_STATES = ("new", "open", "pending")


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    assigned_at = fields.Datetime(readonly=True, help="When the current assignee received the conversation.")

    @api.model_create_multi
    def create(self, vals_list):
        now = fields.Datetime.now()
        for vals in vals_list:
            if vals.get("user_id") and not vals.get("assigned_at"):
                vals["assigned_at"] = now
        return super().create(vals_list)

    def write(self, vals):
        if "user_id" not in vals:
            return super().write(vals)
        previous = {conversation: conversation.user_id for conversation in self}
        result = super().write({"assigned_at": fields.Datetime.now() if vals["user_id"] else False, **vals})
        for conversation in self:
            if conversation.user_id != previous[conversation]:
                conversation._whatsapp_follow_owner(previous[conversation])
        return result

    def _whatsapp_follow_owner(self, previous_user):
        """The lead gets the conversation's new owner, unless someone else already owns it."""
        self.ensure_one()
        lead = self.lead_id
        if self.user_id and lead and lead.user_id in (previous_user, self.env["res.users"]):
            # sudo: the owner changes with the conversation, whoever moved it
            lead.sudo().user_id = self.user_id

    # ------------------------------------------------------------
    # Choosing a member
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_candidates(self, team, company):
        """Members of ``team`` who may receive its conversations now, in a stable order."""
        members = team.sudo().crm_team_member_ids.filtered(
            lambda m: (
                m.whatsapp_available
                and m.user_id.active
                and company in m.user_id.company_ids
                and m.user_id.has_group("whatsapp_crm.group_whatsapp_crm_user")
            )
        )
        return members.user_id.sorted("id")

    @api.model
    def _next_agent(self, account, team=None, exclude=None):
        """The team's next available member (round-robin or fewest open conversations, per team);
        without team members, the account's agents in turn."""
        team = team or account.team_id
        if not team or not team.sudo().crm_team_member_ids:
            return super()._next_agent(account) if exclude is None else self.env["res.users"]
        candidates = self._whatsapp_candidates(team, account.company_id) - (exclude or self.env["res.users"])
        if not candidates:
            return candidates
        # the team's row lock makes concurrent assignments of one team take turns
        self.env.cr.execute("SELECT whatsapp_last_user_id FROM crm_team WHERE id = %s FOR UPDATE", [team.id])
        last_id = self.env.cr.fetchone()[0] or 0
        ordered = candidates.filtered(lambda u: u.id > last_id) + candidates.filtered(lambda u: u.id <= last_id)
        if team.whatsapp_assignment == "least_open":
            counts = dict(
                self.sudo()._read_group(
                    [("user_id", "in", candidates.ids), ("state", "in", OPEN_STATES)], ["user_id"], ["__count"]
                )
            )
            user = min(ordered, key=lambda u: counts.get(u, 0))
        else:
            user = ordered[0]
        team.sudo().whatsapp_last_user_id = user
        return user

    @api.model
    def _whatsapp_on_inbound(self, messages):
        """Unassigned chats that customers write to go to their team's next available member
        (the hook's own fallback, the lead's salesperson or the team leader, comes after)."""
        for conversation in messages.conversation_id.filtered(lambda c: not c.user_id):
            team = conversation.team_id or conversation.account_id.team_id
            if team.sudo().crm_team_member_ids:
                user = self._next_agent(conversation.account_id, team=team)
                if user:
                    conversation.user_id = user
        return super()._whatsapp_on_inbound(messages)

    def _whatsapp_assign(self, user, team=None):
        """Give these conversations to ``user`` (and ``team``), noting it in their chatter."""
        values = {"user_id": user.id}
        if team:
            values["team_id"] = team.id
        self.write(values)
        for conversation in self:
            conversation.message_post(
                body=_("Assigned to %s.", user.name) if user else _("Unassigned."),
                subtype_xmlid="mail.mt_note",
            )

    # ------------------------------------------------------------
    # Lead
    # ------------------------------------------------------------

    def _lead_values(self, referral=None):
        values = super()._lead_values(referral)
        if self.user_id:
            values["user_id"] = self.user_id.id
        # in the salesperson's pipeline, even where leads are enabled
        values.setdefault("type", "opportunity")
        if self.wa_id:
            values.setdefault("phone", self.partner_id.mobile or self.partner_id.phone or f"+{self.wa_id}")
            region = wa_region(self.wa_id)
            country = region and self.env["res.country"].search([("code", "=", region)], limit=1)
            if country:
                values.setdefault("country_id", country.id)
        return values

    # ------------------------------------------------------------
    # Waiting too long
    # ------------------------------------------------------------

    @api.model
    def _cron_whatsapp_reassign(self):
        """Offer conversations waiting longer than their team allows to the next available member."""
        now = fields.Datetime.now()
        teams = self.env["crm.team"].search([("whatsapp_reassign_minutes", ">", 0)])
        for team in teams:
            limit = now - timedelta(minutes=team.whatsapp_reassign_minutes)
            waiting = self.search(
                [
                    ("team_id", "=", team.id),
                    ("state", "in", ("new", "open")),
                    ("user_id", "!=", False),
                    ("waiting_since", "<=", limit),
                    ("assigned_at", "<=", limit),
                ]
            )
            for conversation in waiting:
                user = self._next_agent(conversation.account_id, team=team, exclude=conversation.user_id)
                if user:
                    conversation._whatsapp_assign(user)
