"""``aecourse grade``: the instructor's class grader, one file per step.

==============  ===============================================================
module          owns
==============  ===============================================================
``course``      the command line, the course's settings, one task per student
``batch``       N submissions at a time, fault containment, summary, CSV report
``cluster``     ``--scheduler``/``--cluster``: submissions as Dask tasks, one writer
``slurm``       grading workers from a Slurm queue (``dask-jobqueue``)
``resume``      ``--only-missing``: which students already have a complete result
``preflight``   before a class: the source is the release, the reference earns all
``run``         grading one submission (a plain function of plain data)
``instructor``  the instructor's code here: setup once before the fork, tests
``inplace``     arguments a student's function changes in place, copied back
``session``     one worker's life: requests under deadlines, callbacks, restarts
``process``     forking, confining and stopping a worker process
``isolation``   limits, the mount plan, users, namespaces, rlimits
``cgroups``     memory and process cgroups of a worker
``worker``      the student side: bootstrap, then serving requests
``guard``       the delegation guard and audit hook installed in the worker
``protocol``    the one framed channel (pickle in, JSON + .npy out)
``autograd``    gradients of a student's tensor results, carried across as Jacobians
``notebooks``   the nbgrader cell model, reading submissions defensively
``flags``       static tampering indicators in a submitted source
``files``       a submission's files, copied without following links
``gradebook``   the single writer into nbgrader's gradebook and autograded/
``feedback``    feedback pages without hidden tests' source (a preprocessor)
``late``        nbgrader's late-submission penalty, applied as autograde does
``ownership``   files handed back to the course's owner after grading as root
``lms``         ``aecourse roster`` / ``aecourse export``: the LMS round trip
``lean``        nbgrader's API imported without its server extensions
``preload``     what the fork server imports once per batch
``release``     ``aecourse release``: exercises/ from solutions/
==============  ===============================================================

Imports go one way: course -> batch -> run -> session -> process -> {protocol, isolation};
session -> {autograd, inplace} -> protocol; worker -> {guard, autograd, inplace, protocol}.
"""
