"""nbgrader configuration for the aecourse assignments.

The repository root is the nbgrader course directory: instructors write
assignments in ``solutions/`` (nbgrader's *source*), ``make release`` generates
``exercises/`` (nbgrader's *release*) from them, and students' work is collected
into ``submitted/`` and graded into ``autograded/`` and ``feedback/``.
"""

import os

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "aecourse"
# Absolute: the folder of this file, wherever a command or a Jupyter server is started.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# The exchange (release_assignment, fetch_assignment, submit, collect, release_feedback): the
# same folder for the instructor and every student. deploy/jupyterhub/nbgrader_config.py sets it
# the same way for the students' servers; AECOURSE_EXCHANGE_ROOT moves both (tests use it).
c.Exchange.root = os.environ.get("AECOURSE_EXCHANGE_ROOT", "/srv/nbgrader/exchange")

# Late submissions (nbgrader's own plugin; `aecourse grade` applies the same one):
# 'none' records how late a submission is, 'zero' scores a late submission 0.
c.LateSubmissionPlugin.penalty_method = "none"

# Submissions downloaded from an LMS: put its zip into downloaded/<ps>/archive/ and run
# `nbgrader zip_collect <ps>`. The collector reads Canvas's (or, with
# `--LmsCollector.lms=moodle`, Moodle's) download names and files each under the roster id
# (`aecourse roster import` first).
c.ZipCollectApp.collector_plugin = "aecourse.grader.lms.LmsCollector"
c.LmsCollector.lms = "canvas"

# Feedback pages show each test's result and message, not the hidden tests' source (next term's
# students must not get this term's tests); Formgrader still shows instructors everything.
# show_test_source = True restores nbgrader's pages.
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
                                    "aecourse.grader.feedback.AecourseFeedback"]
c.AecourseFeedback.show_test_source = False

# Assignments ship with their notebooks only; data comes from `aecourse.data`.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# A runaway student cell must not stall a class's grading for ever.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
# `nbgrader validate` cuts every line of a failure message at this width (default 90).
c.Validator.width = 500
