from . import controllers
from . import models
from . import report
from . import tools
from . import wizard


def _post_init_count_messages(env):
    """Count the messages stored while installing (demo data does not pass the inbound hook)."""
    env["crm.whatsapp.message.stat"]._rebuild()
