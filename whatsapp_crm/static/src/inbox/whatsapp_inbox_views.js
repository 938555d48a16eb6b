import { markup } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useBus } from "@web/core/utils/hooks";
import { useDebounced } from "@web/core/utils/timing";
import { escape } from "@web/core/utils/strings";
import { kanbanView } from "@web/views/kanban/kanban_view";
import { KanbanController } from "@web/views/kanban/kanban_controller";
import { listView } from "@web/views/list/list_view";
import { ListController } from "@web/views/list/list_controller";

/**
 * The inbox lists update themselves when the bus says a conversation changed, and an empty
 * search says "no match" rather than "no conversation yet".
 */
function useInbox(controller) {
    const reload = useDebounced(() => {
        const root = controller.model.root;
        if (!root.editedRecord && !(root.selection && root.selection.length)) {
            controller.model.load();
        }
    }, 200);
    useBus(controller.env.bus, "WHATSAPP_CRM:UPDATE", reload);
    const info = controller.props.info;
    const help = info.noContentHelp;
    const searchModel = controller.env.searchModel;
    const noMatch = markup(
        `<p class="o_view_nocontent_empty_folder">${escape(_t("No match"))}</p>` +
            `<p>${escape(_t("No conversation matches this search: try fewer words, or another filter."))}</p>`
    );
    Object.defineProperty(info, "noContentHelp", {
        configurable: true,
        get: () =>
            searchModel.query.some((item) => searchModel.searchItems[item.searchItemId]?.type === "field")
                ? noMatch
                : help,
    });
}

export class WhatsappInboxListController extends ListController {
    setup() {
        super.setup();
        useInbox(this);
    }
}

export class WhatsappInboxKanbanController extends KanbanController {
    setup() {
        super.setup();
        useInbox(this);
    }
}

registry.category("views").add("whatsapp_inbox_list", { ...listView, Controller: WhatsappInboxListController });
registry.category("views").add("whatsapp_inbox_kanban", { ...kanbanView, Controller: WhatsappInboxKanbanController });
