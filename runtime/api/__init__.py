"""The PyCOMPSs programming model, superscalar's own import path (also as pycompss.api.*)."""
from .constraint import constraint
from .exceptions import COMPSsException
from . import lifecycle  # noqa: F401 - registers the end-of-run hook
from .functions import (TaskGroup, compss_barrier, compss_barrier_group, compss_cancel_group,
                        compss_delete_file, compss_delete_object, compss_file_exists,
                        compss_get_number_of_resources, compss_open, compss_snapshot,
                        compss_start, compss_stop, compss_wait_on, compss_wait_on_directory,
                        compss_wait_on_file)
from .implement import implement
from .on_failure import on_failure
from .parameter import *  # noqa: F401,F403 - the PyCOMPSs vocabulary
from .task import task

__all__ = ["task", "constraint", "implement", "on_failure", "COMPSsException", "TaskGroup", "compss_barrier",
           "compss_barrier_group", "compss_cancel_group", "compss_delete_file",
           "compss_delete_object", "compss_file_exists", "compss_get_number_of_resources",
           "compss_open", "compss_snapshot", "compss_start", "compss_stop", "compss_wait_on",
           "compss_wait_on_directory", "compss_wait_on_file"]
