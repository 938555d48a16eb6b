import { registry } from "@web/core/registry";

/**
 * A salesperson finds their conversation in CRM > WhatsApp > My Conversations and answers it.
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
            content: "Open the customer's conversation",
            trigger: ".o_list_view .o_data_row:contains('Ines Tour') td[name=display_name]",
            run: "click",
        },
        {
            content: "The conversation shows the customer's message",
            trigger: `.o_field_widget[name=message_ids_wa] .o_data_row:contains('${INBOUND}')`,
        },
        {
            content: "Answer from the conversation",
            trigger: ".o_form_view .o_statusbar_buttons button.btn-primary",
            run: "click",
        },
        {
            content: "Write the reply",
            trigger: ".modal .o_field_widget[name=body] textarea",
            run: `edit ${REPLY} && press Tab`,
        },
        {
            content: "Send it",
            trigger: ".modal .modal-footer button[name=action_send]",
            run: "click",
        },
        {
            content: "WhatsApp accepted the message",
            trigger: ".o_notification:contains('WhatsApp message sent')",
        },
        {
            content: "The reply is in the conversation",
            trigger: `body:not(:has(.modal .o_form_view)) .o_field_widget[name=message_ids_wa] .o_data_row:contains('${REPLY}')`,
        },
    ],
});
