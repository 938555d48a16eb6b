import { registry } from "@web/core/registry";
import { sendTemplateSteps } from "./whatsapp_crm_tour_steps";

/**
 * A salesperson records a customer's opt-in with its proof from the contact form, then sends
 * them a marketing template (which needs that opt-in). Fixtures and final assertions:
 * whatsapp_crm/tests/test_ui_consent.py.
 */
registry.category("web_tour.tours").add("whatsapp_crm_consent_tour", {
    steps: () => [
        {
            content: "Open the consent tab of the contact",
            trigger: ".o_form_view .o_notebook a[name=whatsapp_consent]",
            run: "click",
        },
        {
            content: "Record a consent",
            trigger: ".o_form_view button[name=action_whatsapp_record_consent]",
            run: "click",
        },
        {
            content: "Marketing opt-in is proposed; write the proof",
            trigger: ".modal .o_field_widget[name=proof] textarea",
            run: "edit Signed the newsletter form at the fair, 12 March",
        },
        {
            content: "Record it",
            trigger: ".modal .modal-footer button[name=action_record]",
            run: "click",
        },
        {
            content: "The contact shows the opt-in and its history",
            trigger:
                "body:not(:has(.modal)) .o_field_widget[name=whatsapp_consent_history_ids] td:contains('Signed the newsletter form')",
        },
        {
            content: "Open the WhatsApp composer",
            trigger: ".o_form_view .o_statusbar_buttons button:contains('WhatsApp')",
            run: "click",
        },
        ...sendTemplateSteps("spring", "spring_promo", "Hello Ines Tour"),
    ],
});
