"""nbgrader settings of an instructor's server: the course repository's own configuration.

The course is the clone in AECOURSE_COURSE_DIR (default: ~/aecourse), so Formgrader and every
nbgrader command see the same course, exchange and gradebook whatever folder the server starts in.
"""

import os

c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)

course = os.environ.get("AECOURSE_COURSE_DIR", os.path.expanduser("~/aecourse"))
if os.path.isfile(os.path.join(course, "nbgrader_config.py")):
    load_subconfig(os.path.join(course, "nbgrader_config.py"))  # noqa: F821
c.CourseDirectory.root = course
