from . import test_coexistence
from . import test_webhook_messages
from . import test_whatsapp_cloud_api
from . import test_cloud_api_emulator
from . import test_crm_whatsapp_account
from . import test_webhook_controller
