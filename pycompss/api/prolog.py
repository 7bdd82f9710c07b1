from runtime.api.prolog import Prolog, prolog  # noqa: F401
