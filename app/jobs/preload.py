"""What the local executor's forkserver imports before it forks the workers and the predictor.

The local executor starts its children from a forkserver that has imported this module, so each
child is a fork that already has torch and the experiment modules: it is ready in tens of
milliseconds, where a spawned child paid 1-4 s of CPU importing torch itself -- at every server start
(two workers and the predictor) and for every worker that replaces one killed by a cancel or a crash.

Only imports: no tensor is made and no thread pool or CUDA context is started here, since a fork
copies the forkserver but not its threads (a CUDA context, or an OpenMP pool that had run, would be
broken in the child). A failure is left to the children, which import again and report it (to the
job, or in their hello): an exception here would end the forkserver.
"""

try:
    import torch  # noqa: F401

    from app.jobs.worker import import_experiments

    import_experiments("forkserver")
except Exception:  # the children import again, and say what failed
    pass
