import { Component, markup, onMounted, onPatched, onWillStart, onWillUpdateProps, useRef, useState } from "@odoo/owl";
import { useEmojiPicker } from "@web/core/emoji_picker/emoji_picker";
import { _t } from "@web/core/l10n/translation";
import { deserializeDateTime, formatDate, formatDateTime } from "@web/core/l10n/dates";
import { registry } from "@web/core/registry";
import { useBus, useService } from "@web/core/utils/hooks";
import { FileUploader } from "@web/views/fields/file_handler";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

const { DateTime } = luxon;

const TICKS = {
    queued: { icon: "fa-clock-o", label: _t("Queued") },
    unconfirmed: { icon: "fa-clock-o", label: _t("Awaiting WhatsApp's confirmation") },
    sent: { icon: "fa-check", label: _t("Sent") },
    delivered: { icon: "fa-check o_whatsapp_crm_double", label: _t("Delivered") },
    read: { icon: "fa-check o_whatsapp_crm_double text-info", label: _t("Read") },
    played: { icon: "fa-check o_whatsapp_crm_double text-info", label: _t("Played") },
    failed: { icon: "fa-exclamation-circle text-danger", label: _t("Failed") },
    refused: { icon: "fa-ban text-danger", label: _t("Refused") },
};
const REACTIONS = ["👍", "❤️", "😂", "😮", "🙏"];

/** Oldest first; bubbles and notes of the same second keep their order of creation. */
function byTime(a, b) {
    return a.timestamp === b.timestamp ? a.id - b.id : a.timestamp < b.timestamp ? -1 : 1;
}

/**
 * A WhatsApp conversation as a chat: bubbles, day separators, ticks, media, reactions and
 * quotes, and a reply box (text, emoji, files, reply-to, canned responses, templates once
 * the 24-hour window is closed). Used on conversations, leads and contacts; live through
 * the whatsapp_crm.live service.
 */
export class WhatsappChat extends Component {
    static template = "whatsapp_crm.WhatsappChat";
    static components = { FileUploader };
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.notification = useService("notification");
        this.action = useService("action");
        this.live = useService("whatsapp_crm.live");
        this.listRef = useRef("list");
        this.inputRef = useRef("input");
        this.emojiRef = useRef("emoji");
        this.state = useState({
            loading: true,
            conversations: [],
            conversationId: false,
            header: false,
            messages: [],
            notes: [],
            hasMore: false,
            body: "",
            noteMode: false,
            mentions: [],
            mentionSuggestions: [],
            replyTo: false,
            attachments: [],
            canned: [],
            cannedIndex: 0,
            templateId: false,
            sending: false,
            reactingTo: false,
            now: DateTime.now(),
        });
        this.scrollToBottom = true;
        this.atBottom = true; // the user reads the latest messages (see onScroll)
        this.reactions = REACTIONS;
        useEmojiPicker(this.emojiRef, { onSelect: (emoji) => this.insertText(emoji) });
        useBus(this.env.bus, "WHATSAPP_CRM:UPDATE", ({ detail }) => this.onUpdate(detail));
        onWillStart(() => this.resolve(this.props.record));
        onWillUpdateProps((nextProps) => {
            if (nextProps.record.resId !== this.props.record.resId) {
                return this.resolve(nextProps.record);
            }
        });
        onMounted(() => this.scroll());
        onPatched(() => this.scroll());
    }

    // ------------------------------------------------------------------
    // Loading
    // ------------------------------------------------------------------

    async resolve(record) {
        this.state.loading = true;
        if (!record.resId) {
            Object.assign(this.state, { conversations: [], conversationId: false, loading: false });
            return;
        }
        const conversations = await this.orm.call("crm.whatsapp.conversation", "whatsapp_chat_resolve", [
            record.resModel,
            record.resId,
        ]);
        this.state.conversations = conversations;
        await this.load(conversations.length ? conversations[0].id : false);
    }

    async load(conversationId) {
        this.state.conversationId = conversationId;
        if (!conversationId) {
            Object.assign(this.state, { header: false, messages: [], notes: [], hasMore: false, loading: false });
            return;
        }
        const data = await this.orm.call("crm.whatsapp.conversation", "whatsapp_chat_load", [[conversationId]]);
        Object.assign(this.state, {
            header: data.conversation,
            messages: data.messages,
            notes: data.notes,
            hasMore: data.has_more,
            loading: false,
            now: DateTime.now(),
        });
        this.scrollToBottom = true;
        this.live.refreshCounter();
    }

    async loadOlder() {
        if (this.loadingOlder) {
            return;
        }
        this.loadingOlder = true;
        try {
            const first = this.state.messages[0];
            const data = await this.orm.call("crm.whatsapp.conversation", "whatsapp_chat_load", [
                [this.state.conversationId],
            ], { before_id: first && first.id, mark_read: false });
            const list = this.listRef.el;
            // the bubbles in view stay where they are while older ones come in above
            this.keepFromBottom = list ? list.scrollHeight - list.scrollTop : null;
            this.state.messages = [...data.messages, ...this.state.messages];
            this.state.notes = [...data.notes, ...this.state.notes];
            this.state.hasMore = data.has_more;
        } finally {
            this.loadingOlder = false;
        }
    }

    onScroll(ev) {
        const list = ev.target;
        this.atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
        // scrolled up to the oldest bubble shown: load the older ones, as WhatsApp does
        if (list.scrollTop < 40 && this.state.hasMore) {
            this.loadOlder();
        }
    }

    async onUpdate(payload) {
        const id = this.state.conversationId;
        if (!id || !(payload.conversation_ids || []).includes(id)) {
            if (!id && this.props.record.resId) {
                // a first message may have started this document's conversation
                await this.resolve(this.props.record);
            }
            return;
        }
        const data = await this.orm.silent.call("crm.whatsapp.conversation", "whatsapp_chat_messages", [
            [id],
            payload.message_ids || [],
        ], { note_ids: payload.note_ids || [] });
        this.state.header = data.conversation;
        this.state.now = DateTime.now();
        this.merge(data.messages);
        this.mergeNotes(data.notes);
    }

    mergeNotes(notes) {
        const known = new Set(this.state.notes.map((n) => n.id));
        const added = notes.filter((n) => !known.has(n.id));
        if (added.length) {
            this.state.notes = [...this.state.notes, ...added].sort(byTime);
            this.scrollToBottom = true;
        }
    }

    merge(messages) {
        const list = [...this.state.messages];
        let appended = false;
        for (const message of messages) {
            const index = list.findIndex((m) => m.id === message.id);
            if (index >= 0) {
                list[index] = message;
            } else {
                list.push(message);
                appended = true;
            }
        }
        list.sort(byTime);
        this.state.messages = list;
        if (appended) {
            this.scrollToBottom = true;
        }
    }

    scroll() {
        if (this.keepFromBottom && this.listRef.el) {
            this.listRef.el.scrollTop = this.listRef.el.scrollHeight - this.keepFromBottom;
            this.keepFromBottom = null;
        } else if (this.scrollToBottom && this.listRef.el) {
            this.listRef.el.scrollTop = this.listRef.el.scrollHeight;
            this.scrollToBottom = false;
            this.atBottom = true;
        }
    }

    /** A picture loaded after the list scrolled down: the latest messages stay in view. */
    onMediaLoad() {
        if (this.atBottom && this.listRef.el) {
            this.listRef.el.scrollTop = this.listRef.el.scrollHeight;
        }
    }

    // ------------------------------------------------------------------
    // Display
    // ------------------------------------------------------------------

    get items() {
        const items = [];
        let day = null;
        const entries = [
            ...this.state.messages.map((message) => ({ message, timestamp: message.timestamp, id: message.id })),
            ...this.state.notes.map((note) => ({ note, timestamp: note.timestamp, id: note.id })),
        ].sort(byTime);
        for (const entry of entries) {
            const date = deserializeDateTime(entry.timestamp);
            const key = date.toISODate();
            if (key !== day) {
                day = key;
                items.push({ key: `day-${key}`, separator: this.dayLabel(date) });
            }
            const time = date.toLocaleString(DateTime.TIME_SIMPLE);
            if (entry.note) {
                items.push({ key: `note-${entry.id}`, note: entry.note, body: markup(entry.note.body), time });
            } else {
                items.push({ key: `message-${entry.id}`, message: entry.message, time });
            }
        }
        return items;
    }

    dayLabel(date) {
        const today = DateTime.now().startOf("day");
        const diff = today.diff(date.startOf("day"), "days").days;
        if (diff === 0) {
            return _t("Today");
        }
        if (diff === 1) {
            return _t("Yesterday");
        }
        return formatDate(date, { format: "DDDD" });
    }

    tick(message) {
        return TICKS[message.state] || TICKS.sent;
    }

    get windowInfo() {
        const header = this.state.header;
        if (!header || !header.window_expires_at) {
            return { open: false, label: _t("Window closed: send an approved template"), closing: false };
        }
        const expires = deserializeDateTime(header.window_expires_at);
        const minutes = Math.floor(expires.diff(this.state.now, "minutes").minutes);
        if (minutes <= 0 || !header.can_send_free_text) {
            return { open: false, label: _t("Window closed: send an approved template"), closing: false };
        }
        const label =
            minutes >= 60
                ? _t("Window closes in %s h", Math.floor(minutes / 60))
                : _t("Window closes in %s min", minutes);
        return { open: true, label, closing: minutes < 60, title: formatDateTime(expires) };
    }

    isImage(attachment) {
        return attachment.mimetype.startsWith("image/");
    }
    isAudio(attachment) {
        return attachment.mimetype.startsWith("audio/");
    }
    isVideo(attachment) {
        return attachment.mimetype.startsWith("video/");
    }
    thumbnailUrl(attachment) {
        return `/web/image/${attachment.id}/320x320`;
    }
    contentUrl(attachment, download = false) {
        return `/web/content/${attachment.id}${download ? "?download=true" : ""}`;
    }

    // ------------------------------------------------------------------
    // Reply box
    // ------------------------------------------------------------------

    insertText(text) {
        const input = this.inputRef.el;
        const start = input ? input.selectionStart : this.state.body.length;
        const end = input ? input.selectionEnd : this.state.body.length;
        this.state.body = this.state.body.slice(0, start) + text + this.state.body.slice(end);
        if (input) {
            input.focus();
        }
    }

    async onInput(ev) {
        this.state.body = ev.target.value;
        if (this.state.noteMode) {
            return this.suggestMentions(ev.target);
        }
        const match = /^\/(\S*)$/.exec(this.state.body);
        if (match) {
            this.state.canned = await this.orm.silent.call(
                "crm.whatsapp.canned.response",
                "whatsapp_canned_search",
                [match[1]]
            );
            this.state.cannedIndex = 0;
        } else {
            this.state.canned = [];
        }
    }

    onFocus() {
        this.markRead();
    }

    async markRead() {
        const header = this.state.header;
        if (header && header.unread_count) {
            header.unread_count = 0;
            await this.orm.silent.call("crm.whatsapp.conversation", "whatsapp_chat_mark_read", [[header.id]]);
            this.live.refreshCounter();
        }
    }

    pickCanned(response) {
        this.state.body = response.body;
        this.state.canned = [];
        this.inputRef.el?.focus();
    }

    onKeydown(ev) {
        if (this.state.noteMode) {
            if (ev.key === "Enter" && !ev.shiftKey && this.state.mentionSuggestions.length) {
                ev.preventDefault();
                this.pickMention(this.state.mentionSuggestions[0]);
            } else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
                ev.preventDefault();
                this.logNote();
            }
            return;
        }
        if (this.state.canned.length) {
            if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
                const step = ev.key === "ArrowDown" ? 1 : -1;
                const count = this.state.canned.length;
                this.state.cannedIndex = (this.state.cannedIndex + step + count) % count;
                ev.preventDefault();
                return;
            }
            if (ev.key === "Enter" || ev.key === "Tab") {
                this.pickCanned(this.state.canned[this.state.cannedIndex]);
                ev.preventDefault();
                return;
            }
            if (ev.key === "Escape") {
                this.state.canned = [];
                return;
            }
        }
        if (ev.key === "Enter" && !ev.shiftKey) {
            ev.preventDefault();
            this.send();
        }
    }

    async onUploaded(file) {
        const [id] = await this.orm.create("ir.attachment", [
            {
                name: file.name,
                datas: file.data,
                mimetype: file.type,
                res_model: "crm.whatsapp.conversation",
                res_id: this.state.conversationId,
            },
        ]);
        this.state.attachments.push({ id, name: file.name, mimetype: file.type || "" });
    }

    removeAttachment(attachment) {
        this.state.attachments = this.state.attachments.filter((a) => a.id !== attachment.id);
    }

    setReplyTo(message) {
        this.state.replyTo = message;
        this.inputRef.el?.focus();
    }

    toggleReact(message) {
        this.state.reactingTo = this.state.reactingTo === message.id ? false : message.id;
    }

    async react(message, emoji) {
        this.state.reactingTo = false;
        await this.callSend({ reaction: emoji, reply_to_id: message.id });
    }

    async send() {
        const body = this.state.body.trim();
        if (this.state.sending || (!body && !this.state.attachments.length)) {
            return;
        }
        const sent = await this.callSend({
            body,
            attachment_ids: this.state.attachments.map((a) => a.id),
            reply_to_id: this.state.replyTo && this.state.replyTo.id,
        });
        if (sent) {
            Object.assign(this.state, { body: "", attachments: [], replyTo: false });
        }
    }

    // ------------------------------------------------------------------
    // Internal notes
    // ------------------------------------------------------------------

    toggleNoteMode() {
        Object.assign(this.state, {
            noteMode: !this.state.noteMode,
            canned: [],
            mentionSuggestions: [],
        });
        this.inputRef.el?.focus();
    }

    async suggestMentions(input) {
        const before = this.state.body.slice(0, input.selectionStart ?? this.state.body.length);
        const match = /(?:^|\s)@([^\s@]*)$/.exec(before);
        if (!match) {
            this.state.mentionSuggestions = [];
            return;
        }
        this.mentionStart = before.length - match[1].length - 1;
        this.state.mentionSuggestions = await this.orm.silent.call(
            "crm.whatsapp.conversation",
            "whatsapp_chat_mention_search",
            [[this.state.conversationId], match[1]]
        );
    }

    pickMention(partner) {
        const input = this.inputRef.el;
        const end = input ? input.selectionStart : this.state.body.length;
        const text = `@${partner.name} `;
        this.state.body = this.state.body.slice(0, this.mentionStart) + text + this.state.body.slice(end);
        if (!this.state.mentions.some((m) => m.id === partner.id)) {
            this.state.mentions.push(partner);
        }
        this.state.mentionSuggestions = [];
        input?.focus();
    }

    async logNote() {
        const body = this.state.body.trim();
        if (this.state.sending || !body) {
            return;
        }
        this.state.sending = true;
        try {
            const partnerIds = this.state.mentions.filter((m) => body.includes(`@${m.name}`)).map((m) => m.id);
            const notes = await this.orm.call(
                "crm.whatsapp.conversation",
                "whatsapp_chat_log_note",
                [[this.state.conversationId], body],
                { partner_ids: partnerIds }
            );
            this.mergeNotes(notes);
            Object.assign(this.state, { body: "", mentions: [], mentionSuggestions: [], noteMode: false });
        } finally {
            this.state.sending = false;
        }
    }

    async sendTemplate() {
        if (!this.state.templateId) {
            return;
        }
        if (await this.callSend({ template_id: parseInt(this.state.templateId) })) {
            this.state.templateId = false;
        }
    }

    async callSend(kwargs) {
        this.state.sending = true;
        try {
            const messages = await this.orm.call(
                "crm.whatsapp.conversation",
                "whatsapp_chat_send",
                [[this.state.conversationId]],
                kwargs
            );
            this.merge(messages);
            this.scrollToBottom = true;
            const failed = messages.find((m) => ["failed", "refused"].includes(m.state));
            if (failed) {
                this.notification.add(failed.error, { type: "danger", title: _t("WhatsApp") });
            }
            return true;
        } finally {
            this.state.sending = false;
        }
    }

    // ------------------------------------------------------------------
    // Other actions
    // ------------------------------------------------------------------

    openComposer() {
        this.action.doAction("whatsapp_crm.crm_whatsapp_composer_action", {
            additionalContext: {
                default_res_model: this.props.record.resModel,
                default_res_id: this.props.record.resId,
            },
            onClose: () => this.resolve(this.props.record),
        });
    }

    openConversation() {
        this.live.openConversation(this.state.conversationId);
    }
}

export const whatsappChat = {
    component: WhatsappChat,
};

registry.category("view_widgets").add("whatsapp_chat", whatsappChat);
