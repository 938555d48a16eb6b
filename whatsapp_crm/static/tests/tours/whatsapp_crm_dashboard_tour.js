import { registry } from "@web/core/registry";

/**
 * A manager opens the WhatsApp dashboard: its figures are drawn, and its headline scorecards show
 * the figures of the chats of the last 30 days. Fixtures: whatsapp_crm/tests/test_reporting_dashboard_ui.py.
 */

const FIGURES = [
    "Chats",
    "First response median (min)",
    "Within target (%)",
    "Leads",
    "Won revenue",
    "Satisfied (%)",
    "Chats per day",
    "First response median per day (min)",
];
const EXPECTED = { Chats: "3", "First response median (min)": "30.00", "Within target (%)": "66.70" };

/** The spreadsheet model of the dashboard on screen (the component that renders it holds it). */
function dashboardModel() {
    const walk = (node) => {
        const model = node.component?.props?.model;
        if (model?.getters?.getChartRuntime) {
            return model;
        }
        for (const child of Object.values(node.children || {})) {
            const found = walk(child);
            if (found) {
                return found;
            }
        }
        return null;
    };
    return walk(odoo.__WOWL_DEBUG__.root.__owl__);
}

function scorecards(model) {
    const getters = model.getters;
    const values = {};
    for (const figure of getters.getFigures(getters.getActiveSheetId())) {
        const runtime = getters.getChartRuntime(figure.id);
        values[getters.getChartDefinition(figure.id).title.text] = runtime.keyValue;
    }
    return values;
}

registry.category("web_tour.tours").add("whatsapp_crm_dashboard_tour", {
    steps: () => [
        {
            content: "Open the WhatsApp dashboard",
            trigger: ".o_spreadsheet_dashboard_action .o_search_panel_category_value[data-name='WhatsApp']",
            run: "click",
        },
        {
            content: "Its figures are drawn, the scorecards with the figures of the last 30 days",
            trigger: ".o_spreadsheet_dashboard_action .o-figure canvas",
            run: async () => {
                let values = {};
                for (let attempt = 0; attempt < 60; attempt++) {
                    const model = dashboardModel();
                    values = model ? scorecards(model) : {};
                    if (Object.entries(EXPECTED).every(([title, value]) => values[title] === value)) {
                        break;
                    }
                    await new Promise((resolve) => setTimeout(resolve, 100));
                }
                const drawn = document.querySelectorAll(".o_spreadsheet_dashboard_action .o-figure canvas");
                if (drawn.length < FIGURES.length) {
                    throw new Error(`${drawn.length} figures drawn, not ${FIGURES.length}`);
                }
                for (const title of FIGURES) {
                    if (!(title in values)) {
                        throw new Error(`The dashboard has no figure "${title}": ${JSON.stringify(values)}`);
                    }
                }
                for (const [title, value] of Object.entries(EXPECTED)) {
                    if (values[title] !== value) {
                        throw new Error(`"${title}" shows ${values[title]}, not ${value}`);
                    }
                }
            },
        },
        {
            content: "No loading error",
            trigger: ".o_spreadsheet_dashboard_action:not(:has(.dashboard-loading-status))",
        },
    ],
});
