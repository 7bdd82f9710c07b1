from runtime.api.container import Container, container  # noqa: F401
