"""PyCOMPSs import paths, served by superscalar (aliases of runtime.api only)."""
