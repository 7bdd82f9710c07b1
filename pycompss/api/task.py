from runtime.api.task import task  # noqa: F401
