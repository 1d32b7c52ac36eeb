"""The ceiling's server: a Flask POST that only parses the JSON body and answers 201 (no database, no
Kafka). What gunicorn + Flask can answer on this machine bounds what any endpoint of ours can."""
from flask import Flask, request

app = Flask(__name__)


@app.post("/api/orders")
def accept():
    body = request.get_json()
    return {"order": {"id": 1, "received": len(body)}}, 201


@app.get("/health")
def health():
    """What the launcher waits for before the load starts: a worker process serves requests."""
    return {"status": "ok"}
