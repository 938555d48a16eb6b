from odoo import api, models, tools
from odoo.models import parse_read_group_spec
from odoo.tools import SQL


class CrmWhatsappReportMixin(models.AbstractModel):
    """A read-only report on an SQL view, whose fields may also aggregate by ``median``."""

    _name = "crm.whatsapp.report.mixin"
    _description = "WhatsApp Report"
    _auto = False
    # {rate field: (numerator, denominator)}: aggregated as 100 * SUM(numerator) / SUM(denominator)
    _ratio_fields = {}
    # a report whose rows count several records each: "Count" sums this column
    _count_field = None

    def _query(self):
        """The SELECT of the view (an ``SQL``)."""
        raise NotImplementedError

    def init(self):
        if self._abstract:
            return
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(SQL("CREATE OR REPLACE VIEW %s AS (%s)", SQL.identifier(self._table), self._query()))

    @api.model
    def _read_group(self, *args, **kwargs):
        # a report groups up to millions of rows, and medians sort them: in memory, not on disk
        # (and without JIT compilation, which costs more than it saves on these queries)
        self.env.cr.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        return super()._read_group(*args, **kwargs)

    @api.model
    def _read_group_select(self, aggregate_spec, query):
        if aggregate_spec == "__count" and self._count_field:
            return SQL("COALESCE(SUM(%s), 0)", self._field_to_sql(self._table, self._count_field, query))
        fname, _property, func = parse_read_group_spec(aggregate_spec)
        if fname in self._ratio_fields:
            super()._read_group_select(f"{fname}:max", query)  # the field exists and may be read
            numerator, denominator = (
                self._field_to_sql(self._table, name, query) for name in self._ratio_fields[fname]
            )
            return SQL("(100.0 * SUM(%s) / NULLIF(SUM(%s), 0))::float8", numerator, denominator)
        if func != "median":
            return super()._read_group_select(aggregate_spec, query)
        super()._read_group_select(f"{fname}:max", query)  # the field exists and may be read
        return SQL("PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY %s)", self._field_to_sql(self._table, fname, query))
