"""Late submissions: the penalty ``nbgrader autograde`` would assign, as plain functions.

nbgrader computes a late penalty in its ``AssignLatePenalties`` preprocessor: for each submitted
notebook of a submission whose timestamp is after the (extended) due date, it asks the configured
plugin (``c.AssignLatePenalties.plugin_class``, by default ``LateSubmissionPlugin`` with
``c.LateSubmissionPlugin.penalty_method = 'none' | 'zero'``) for a penalty given the notebook's
score and the seconds late, clamps it into ``[0, score]``, and stores it on the notebook
(``None`` when on time). :func:`apply_late_penalties` does exactly that on an open gradebook,
through the same configured plugin and nbgrader's own clamp, so ``aecourse grade`` and
``nbgrader autograde`` give the same penalty on the same timestamps.
"""

import os
from types import SimpleNamespace

from jupyter_core.paths import jupyter_config_path
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


def course_config(course_dir="."):
    """The nbgrader configuration an nbgrader command started in ``course_dir`` would load.

    Jupyter's configuration folders first (``/etc/jupyter``, ``~/.jupyter``, ...: a JupyterHub
    deployment sets the exchange there), then ``course_dir/nbgrader_config.py``, which wins.
    ``CourseDirectory.root`` defaults to ``course_dir`` made absolute.
    """
    course_dir = os.path.abspath(course_dir)
    config = Config()
    config.CourseDirectory.root = course_dir
    for folder in [*reversed(jupyter_config_path()), course_dir]:
        if os.path.isfile(os.path.join(folder, "nbgrader_config.py")):
            config.merge(PyFileConfigLoader("nbgrader_config.py", folder).load_config())
    if "db_url" not in config.CourseDirectory:
        root = config.CourseDirectory.root
        config.CourseDirectory.db_url = "sqlite:///" + os.path.join(root, "gradebook.db")
    return config


def late_penalty(config, student_id, score, seconds_late):
    """The penalty (points, ``>= 0``) for one notebook, or ``None`` when none applies.

    Parameters
    ----------
    config : traitlets.config.Config
        The course's nbgrader configuration (:func:`course_config`).
    student_id : str
    score : float
        The notebook's score before the penalty.
    seconds_late : float
        ``SubmittedAssignment.total_seconds_late`` (0 when on time or without a timestamp).
    """
    if seconds_late <= 0:
        return None
    from nbgrader.preprocessors import AssignLatePenalties  # nbconvert: only when late
    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    penalty = assigner.plugin_inst.late_submission_penalty(student_id, score, seconds_late)
    if penalty is None:
        return None
    # nbgrader's own clamp into [0, score] (nbgrader==0.9.6 is pinned).
    return assigner._check_late_penalty(SimpleNamespace(score=score), penalty)


def apply_late_penalties(gradebook, assignment_id, student_id, config):
    """Store the late penalty of every notebook of one submission, as ``nbgrader autograde`` does.

    Call it after the submission's timestamp and scores are in the gradebook (and committed).
    Returns the submission's seconds late (0.0 when on time) and its total penalty.
    """
    submission = gradebook.find_submission(assignment_id, student_id)
    seconds_late = submission.total_seconds_late
    total = 0.0
    for notebook in submission.notebooks:
        penalty = late_penalty(config, student_id, notebook.score, seconds_late)
        notebook.late_submission_penalty = penalty
        total += penalty or 0.0
    gradebook.db.commit()
    return seconds_late, total
