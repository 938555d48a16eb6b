from . import crm_whatsapp_composer
