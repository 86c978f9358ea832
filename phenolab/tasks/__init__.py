"""Task data builders: each turns a task config and K run seeds into `TaskData` stacked over K.

Importing this package registers the built-in tasks; no data is generated until a build.
"""

from phenolab.tasks import digits, mnist1d, modular, regression
from phenolab.tasks._base import TASK_BUILDERS, TaskBuilder, TaskData, build_task, register_task

__all__ = ["TASK_BUILDERS", "TaskBuilder", "TaskData", "build_task", "digits", "mnist1d", "modular",
           "register_task", "regression"]
