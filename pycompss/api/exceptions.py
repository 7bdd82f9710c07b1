from runtime.api.exceptions import COMPSsException  # noqa: F401
