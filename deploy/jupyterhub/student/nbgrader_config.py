"""nbgrader settings of a student's server: the course and the exchange, nothing else."""

import os

c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)

c.CourseDirectory.course_id = "aecourse"
c.Exchange.root = os.environ.get("AECOURSE_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
