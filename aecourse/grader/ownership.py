"""After grading as root, give the course's files back to the course's owner.

``sudo aecourse grade`` (full isolation needs root) would otherwise leave ``gradebook.db``,
``autograded/`` and ``feedback/`` owned by root, and the instructor's Formgrader, run as the
instructor, could no longer write them. :func:`hand_back` changes the owner of what grading wrote
to the owner of the course directory itself, never following a symbolic link.
"""

import os

GRADING_OUTPUTS = ("gradebook.db", "gradebook.db-journal", "autograded", "feedback")


def hand_back(course_dir, paths=GRADING_OUTPUTS):
    """Give ``paths`` (relative to ``course_dir``, recursively) to the course directory's owner.

    Does nothing unless running as root and the course directory belongs to someone else.
    Symbolic links are changed themselves (``lchown``), never followed. Returns the number of
    entries whose owner changed.
    """
    if os.geteuid() != 0:
        return 0
    course = os.stat(course_dir)
    if course.st_uid == 0:
        return 0
    changed = 0
    for relative in paths:
        top = os.path.join(course_dir, relative)
        if not os.path.lexists(top):
            continue
        entries = [top]
        if os.path.isdir(top) and not os.path.islink(top):
            for folder, dirs, files in os.walk(top):
                entries += [os.path.join(folder, name) for name in dirs + files]
        for entry in entries:
            info = os.lstat(entry)
            if (info.st_uid, info.st_gid) != (course.st_uid, course.st_gid):
                os.lchown(entry, course.st_uid, course.st_gid)
                changed += 1
    return changed
