from runtime.api.prolog import Epilog, epilog  # noqa: F401
