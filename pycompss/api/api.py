from runtime.api.functions import *  # noqa: F401,F403
from runtime.api.functions import TaskGroup  # noqa: F401
