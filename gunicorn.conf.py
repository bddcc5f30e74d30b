"""gunicorn's settings for Kairos, read from the working directory (``gunicorn wsgi:app``).

Flags on the command line (``--workers``, ``--threads``, ``--bind``) still win.
"""

import os

# Threads, so a request waiting on the database or a calendar does not hold a process.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# One listening socket per worker (SO_REUSEPORT): the kernel spreads connections over
# the workers. With one shared socket, whichever worker wakes first accepts, and the
# long-lived connections of a proxy's or a load generator's pool pile onto one process
# (one core, with Python's GIL) while the others idle.
reuse_port = True
