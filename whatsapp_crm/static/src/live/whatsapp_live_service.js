import { reactive } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";

/**
 * Live WhatsApp: listens to the server's "whatsapp_crm/update" bus notifications (sent to the
 * assignee, the lead's followers and the team of unassigned chats) and
 * - tells the chat components and inbox views (env.bus "WHATSAPP_CRM:UPDATE"),
 * - refreshes the chatters that show a changed thread,
 * - keeps the systray's unread counter,
 * - shows an Odoo notification for a new chat or a customer's reply.
 * Nothing polls: everything waits for the bus.
 */
export const whatsappLiveService = {
    dependencies: ["bus_service", "orm", "notification", "action", "mail.store"],
    start(env, { bus_service, orm, notification, action, "mail.store": store }) {
        const state = reactive({ unread: 0, conversations: 0, allowed: false });

        async function refreshCounter() {
            try {
                const data = await orm.silent.call("crm.whatsapp.conversation", "whatsapp_systray_data", []);
                Object.assign(state, data, { allowed: true });
            } catch {
                // a user without WhatsApp access: no counter
                state.allowed = false;
            }
        }

        function openConversation(conversationId) {
            action.doAction({
                type: "ir.actions.act_window",
                res_model: "crm.whatsapp.conversation",
                res_id: conversationId,
                views: [[false, "form"]],
                target: "current",
            });
        }

        bus_service.subscribe("whatsapp_crm/update", (payload) => {
            env.bus.trigger("WHATSAPP_CRM:UPDATE", payload);
            for (const [model, id] of payload.threads || []) {
                const thread = store.Thread.get({ model, id });
                if (thread && thread.status !== "loading") {
                    thread.fetchNewMessages();
                }
            }
            refreshCounter();
            const info = payload.notification;
            if (info) {
                const close = notification.add(info.message || "", {
                    title: info.title,
                    type: "info",
                    buttons: [
                        {
                            name: _t("Open the chat"),
                            primary: true,
                            onClick: () => {
                                close();
                                openConversation(info.conversation_id);
                            },
                        },
                    ],
                });
            }
        });
        bus_service.start();
        refreshCounter();
        return { state, refreshCounter, openConversation };
    },
};

registry.category("services").add("whatsapp_crm.live", whatsappLiveService);
