from runtime.api.software import Software, software  # noqa: F401
