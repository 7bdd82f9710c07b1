from runtime.api.mpi import MPI, Mpi, mpi  # noqa: F401
