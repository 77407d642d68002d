"""A bare one-file Flask app with the same /hello as Manabi's: what gunicorn and Flask alone
cost on this machine (bench/enroll_rush.py measures it beside the app: ``hello_bare_*``).

    gunicorn --workers 2 --worker-class sync bench.bare_app:app
"""

from flask import Flask, Response

app = Flask(__name__)


@app.get("/hello")
def hello():
    return Response("hello", mimetype="text/plain")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
