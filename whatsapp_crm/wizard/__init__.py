from . import crm_whatsapp_composer
from . import crm_whatsapp_composer_checks
