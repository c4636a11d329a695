"""What every per-submission process needs, imported once per batch by the fork server.

:class:`aecourse.grader.batch.Batch` gives this module as the fork server's only preload (and
imports it itself when it forks without one), so each submission's process starts with numpy,
torch, the course library, the grader and nbgrader's gradebook API (imported lean:
:mod:`aecourse.grader.lean`) already imported. Importing it is its whole job.
"""

import importlib

from aecourse.grader.lean import lighten

# the course library, and what its data loaders import lazily (scikit-learn's alone takes
# seconds: it was paid by every submission's setup cell, in the grader and in the worker)
MODULES = ["numpy", "torch", "sklearn.datasets", "skimage.data", "aecourse.data",
           "aecourse.models", "aecourse.losses", "aecourse.scratch", "aecourse.gradcheck",
           "aecourse.pca", "aecourse.train", "aecourse.plots", "aecourse.corruption",
           "aecourse.grading", "aecourse.grader.run", "aecourse.grader.worker",
           "aecourse.grader.batch", "nbgrader.api"]

lighten()
for _module in MODULES:
    try:
        importlib.import_module(_module)
    except ImportError:         # e.g. no torch: a submission that needs it says so itself
        pass
