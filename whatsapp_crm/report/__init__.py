from . import crm_whatsapp_report_mixin
from . import crm_whatsapp_report_conversation
from . import crm_whatsapp_report_message
from . import crm_whatsapp_report_pipeline
from . import crm_whatsapp_report_csat
