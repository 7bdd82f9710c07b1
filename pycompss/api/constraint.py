from runtime.api.constraint import constraint  # noqa: F401
