from . import test_coexistence
from . import test_webhook_messages
