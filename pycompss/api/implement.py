from runtime.api.implement import implement  # noqa: F401
