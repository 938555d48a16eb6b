import { registry } from "@web/core/registry";

/**
 * A salesperson finds their conversation in CRM > WhatsApp > My Conversations and answers it
 * from the chat's reply box.
 * Fixtures and final assertions: whatsapp_crm/tests/test_ui.py.
 */
const INBOUND = "Do you have the sofa in blue?";
const REPLY = "The blue sofa ships next week";

registry.category("web_tour.tours").add("whatsapp_crm_conversation_tour", {
    steps: () => [
        {
            content: "Open the WhatsApp menu of CRM",
            trigger: ".o_menu_sections [data-menu-xmlid='whatsapp_crm.whatsapp_crm_menu_root']",
            run: "click",
        },
        {
            content: "Open my conversations",
            trigger: ".dropdown-item[data-menu-xmlid='whatsapp_crm.crm_whatsapp_conversation_menu_my']",
            run: "click",
        },
        {
            content: "The inbox shows the last message",
            trigger: `.o_list_view .o_data_row:contains('Ines Tour') td[name=last_message_preview]:contains('${INBOUND}')`,
        },
        {
            content: "Open the customer's conversation",
            trigger: ".o_list_view .o_data_row:contains('Ines Tour') td[name=display_name]",
            run: "click",
        },
        {
            content: "The chat shows the customer's message",
            trigger: `.o_whatsapp_crm_chat .o_whatsapp_crm_bubble_in:contains('${INBOUND}')`,
        },
        {
            content: "The customer's card is beside the chat",
            trigger: ".o_whatsapp_crm_card:contains('Ines Tour'):contains('Sofas for the lobby')",
        },
        {
            content: "No WhatsApp id is shown to the user",
            trigger: "body:not(:contains('wamid.'))",
        },
        {
            content: "Write the reply",
            trigger: ".o_whatsapp_crm_chat textarea.o_whatsapp_crm_input",
            run: `edit ${REPLY}`,
        },
        {
            content: "Send it",
            trigger: ".o_whatsapp_crm_chat button.o_whatsapp_crm_send",
            run: "click",
        },
        {
            content: "The reply is in the chat, on our side, sent",
            trigger: `.o_whatsapp_crm_bubble_out:contains('${REPLY}') .o_whatsapp_crm_tick[data-state=sent]`,
        },
    ],
});
