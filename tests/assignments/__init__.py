"""Pipeline tests of the nbgrader assignments: the harness and one bug file per assignment."""
