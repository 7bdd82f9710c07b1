from runtime.api.on_failure import on_failure  # noqa: F401
