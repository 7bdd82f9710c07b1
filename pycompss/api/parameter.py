from runtime.api.parameter import *  # noqa: F401,F403
