"""gunicorn's settings for Manabi, read from the working directory by every ``gunicorn``
started here (``gunicorn -w 4 -b 127.0.0.1:8000 wsgi:app``). Command-line options still
apply on top; ``-c other.py`` replaces this file."""


def post_worker_init(worker):
    # Before the worker accepts its first connection: rehearse the hot paths (rolled back)
    # and freeze the start-up objects out of the garbage collector's way (lms.common.warmup).
    from flask import Flask

    from lms.common.warmup import warm_up_worker

    app = worker.wsgi
    if isinstance(app, Flask):
        warm_up_worker(app)
