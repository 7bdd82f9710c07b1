from runtime.api.binary import Binary, binary  # noqa: F401
