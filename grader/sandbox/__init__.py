"""The sandbox that a learner's kernel runs in (imports: grader.format, grader.errors; nothing above).

Trust boundary (see ``docs/ARCHITECTURE.md``): pytest + nbval, the grading bundle and the
result file stay in the trusted process; only the learner's ipykernel runs in here. The kernel
is started through a kernelspec the grader builds (the notebook's own kernelspec is ignored)
whose ``argv`` is this module's launcher::

    python -m grader.sandbox launch --job DIR --uid N --limits JSON CONNECTION_FILE

The launcher runs trusted (outside), and starts the kernel as

- a distinct uid per concurrent job (a slot from :func:`job_slot`),
- in a cgroup of its own where root can make one (:class:`JobCgroup`): the memory and the task
  count of the whole job, which per-process rlimits cannot bound,
- under rlimits: address space, CPU seconds, processes, file size, open files, no core dumps,
- in bubblewrap with every namespace unshared (no network), a read-only minimal filesystem
  (``/usr``, the course environment, a generated ``/etc/passwd``; bubblewrap's own root and
  ``/dev`` remounted read-only), size-capped private ``/tmp``, ``/dev/shm`` and work
  directory, a cleared environment (bubblewrap's own too: it is the sandbox's pid 1, whose
  ``/proc/1/environ`` the kernel can read) and ``--die-with-parent``,
- with a seccomp deny list (:data:`DENIED_SYSCALLS`),
- killed from outside after a wall-clock limit.

ZMQ uses the ``ipc`` transport (Unix sockets in a per-job directory, the only host path the
kernel can write) because TCP cannot cross the empty network namespace. The kernel's
stdout/stderr go to ``/dev/null``.
"""
