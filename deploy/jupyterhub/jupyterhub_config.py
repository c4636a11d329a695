"""JupyterHub for aecourse: one server per Unix user, nbgrader's exchange, Formgrader for
instructors only. Copy this folder (``deploy/jupyterhub/``) to the hub machine and start
``jupyterhub -f /path/to/deploy/jupyterhub/jupyterhub_config.py`` as root.

Roles. Members of the Unix group ``aecourse-instructors`` (or AECOURSE_INSTRUCTORS_GROUP) are
instructors; everyone else is a student. Each server reads the Jupyter configuration folder of
its role (``instructor/`` or ``student/`` next to this file, through JUPYTER_CONFIG_PATH):
students get nbgrader's *Assignments* list and *Validate*, not Formgrader, the course list or
*Create assignment*; instructors get all of them.

Environment. Every server runs ``jupyterhub-singleuser`` from the Python environment the hub
runs in, so that environment must have ``aecourse`` and ``nbgrader`` installed
(``pip install -r requirements.txt`` in the course repository) and be readable by every user.

Exchange. Run ``setup_exchange.sh`` once (as root) before the first release.
"""

import grp
import os
import sys

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)
HERE = os.path.dirname(os.path.abspath(__file__))
INSTRUCTORS_GROUP = os.environ.get("AECOURSE_INSTRUCTORS_GROUP", "aecourse-instructors")

# Authentication: the machine's Unix accounts (PAM), members of the class's two groups only
# (JupyterHub 5 lets nobody in unless told whom). Behind a university login, use an OAuth/LTI
# authenticator instead, with the same user names.
STUDENTS_GROUP = os.environ.get("AECOURSE_STUDENTS_GROUP", "aecourse-students")
c.JupyterHub.authenticator_class = "pam"
c.LocalAuthenticator.allowed_groups = {STUDENTS_GROUP, INSTRUCTORS_GROUP}
# c.Authenticator.admin_users = {"instructor"}

# Listen on this machine only; put a TLS reverse proxy (nginx, Caddy) in front of it.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = 8000

# One local process per user, started from this Python environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"


def is_instructor(name):
    """Whether the Unix user ``name`` is in the instructors' group."""
    try:
        return name in grp.getgrnam(INSTRUCTORS_GROUP).gr_mem
    except KeyError:  # no such group: no instructor
        return False


def role_environment(spawner):
    """Before a server starts: its role's Jupyter configuration, and the course settings."""
    role = "instructor" if is_instructor(spawner.user.name) else "student"
    spawner.environment["JUPYTER_CONFIG_PATH"] = os.path.join(HERE, role)
    for name in ("AECOURSE_EXCHANGE_ROOT", "AECOURSE_COURSE_DIR"):
        if name in os.environ:
            spawner.environment[name] = os.environ[name]
    # One BLAS thread per server: a class shares the machine's cores.
    spawner.environment.setdefault("OMP_NUM_THREADS", "1")


c.Spawner.pre_spawn_hook = role_environment
