/**
 * Steps the tours share. In the open WhatsApp composer: look for the approved template ``name``
 * by ``search``, check its preview shows ``preview``, send it and see WhatsApp accept it.
 */
export function sendTemplateSteps(search, name, preview) {
    return [
        {
            content: "Look for the template",
            trigger: ".modal .o_field_widget[name=template_id] input",
            run: `edit ${search}`,
        },
        {
            content: "Choose it",
            trigger: `.modal .o-autocomplete--dropdown-item a:contains('${name}')`,
            run: "click",
        },
        {
            content: "The preview shows the template filled from the record",
            trigger: `.modal .o_field_widget[name=preview]:contains('${preview}')`,
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
    ];
}
