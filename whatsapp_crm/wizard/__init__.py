from . import crm_whatsapp_composer
from . import crm_whatsapp_consent_wizard
from . import crm_whatsapp_composer_checks
