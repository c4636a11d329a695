"""The ``aecourse`` console script: one subcommand per instructor verb.

Each subcommand is a module with ``main(argv) -> int``; this file only dispatches to it.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "main"]

# name -> (module with main(argv), one-line help)
COMMANDS = {
    "release": ("aecourse.grader.release", "regenerate exercises/ from solutions/ (nbgrader)"),
    "grade": ("aecourse.grader.course", "grade every submission of one assignment, isolated"),
    "roster": ("aecourse.grader.lms", "import the class list into the gradebook (roster import)"),
    "export": ("aecourse.grader.lms", "write the gradebook for Canvas, Moodle or as plain CSV"),
    "publish": ("aecourse.publish", "build the student edition and its book (_build/student)"),
}


def main(argv=None) -> int:
    """``aecourse COMMAND [OPTIONS]``: see ``aecourse --help``."""
    own_process = argv is None                  # the console script, not a caller's import
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
        print("usage: aecourse COMMAND [OPTIONS]   (aecourse COMMAND --help for its options)\n\n"
              "commands:\n" + "\n".join(lines), file=sys.stdout if argv else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"aecourse: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    module, _ = COMMANDS[argv[0]]
    if own_process and argv[0] == "grade" and not {"-h", "--help"} & set(argv):
        from aecourse.grader import batch, lean
        lean.lighten()              # before anything imports nbgrader: seconds saved
        remote = {"--scheduler", "--cluster"} & {a.split("=")[0] for a in argv}
        if not (remote and "--skip-solution-check" in argv):   # else no submission runs here
            batch.start_processes()  # the fork server imports while the course is read
    # aecourse.grader.lms serves two verbs: its main() takes the verb as its first argument
    rest = argv if module == "aecourse.grader.lms" else argv[1:]
    return importlib.import_module(module).main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
