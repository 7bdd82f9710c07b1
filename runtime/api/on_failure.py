"""@on_failure (pycompss.api.on_failure). The policies arrive with the failures work; until
then only the default is accepted, and any other value is refused instead of ignored."""
from __future__ import annotations


class on_failure:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, management: str = "RETRY", **defaults):
        self.management = str(management).upper()
        if self.management != "RETRY":
            raise NotImplementedError(f"@on_failure(management={management!r}) is not "
                                      f"implemented yet in superscalar (only the default)")

    def __call__(self, function):
        return function
