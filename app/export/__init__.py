"""A job as code to take home: one standalone PyTorch script (or notebook) that trains the run again.

    history = load_history(session, job_id)     # history.py: the parameters and every live change
    exported = export(history, "py")            # script.py: the kind's template, rendered

The generated code imports nothing of the playground, and this package imports no torch: it is text.
"""

from app.export.history import HistoryUnavailable, RunHistory, load_history
from app.export.script import Export, export

__all__ = ["Export", "HistoryUnavailable", "RunHistory", "export", "load_history"]
