"""nbgrader configuration for the aecourse assignments.

The repository root is the nbgrader course directory: instructors write
assignments in ``solutions/`` (nbgrader's *source*), ``make release`` generates
``exercises/`` (nbgrader's *release*) from them, and students' work is collected
into ``submitted/`` and graded into ``autograded/`` and ``feedback/``.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "aecourse"
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# Assignments ship with their notebooks only; data comes from `aecourse.data`.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# A runaway student cell must not stall a class's grading for ever.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
