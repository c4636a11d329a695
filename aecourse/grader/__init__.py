"""``aecourse grade``: the instructor's class grader, one file per step.

==============  ===============================================================
module          owns
==============  ===============================================================
``course``      the command line, the course's settings, one task per student
``batch``       N submissions at a time, fault containment, summary, CSV report
``run``         grading one submission (a plain function of plain data)
``session``     one worker's life: requests under deadlines, callbacks, restarts
``process``     forking, confining and stopping a worker process
``isolation``   limits, the mount plan, users, namespaces, rlimits
``cgroups``     memory and process cgroups of a worker
``worker``      the student side: bootstrap, then serving requests
``guard``       the delegation guard and audit hook installed in the worker
``protocol``    the one framed channel (pickle in, JSON + .npy out)
``notebooks``   the nbgrader cell model, reading submissions defensively
``flags``       static tampering indicators in a submitted source
``files``       a submission's files, copied without following links
``gradebook``   the single writer into nbgrader's gradebook and autograded/
``release``     ``aecourse release``: exercises/ from solutions/
==============  ===============================================================

Imports go one way: course -> batch -> run -> session -> process -> {protocol, isolation};
worker -> {guard, protocol}.
"""
