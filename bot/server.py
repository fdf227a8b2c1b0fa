"""The HTTP surface: Slack's events (Bolt's Flask adapter), CRM webhooks and health, served by waitress.

waitress is a production WSGI server that runs in this process, so one `alignbot
run` holds the HTTP threads, the scheduler and the outbox sender together.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

from bot import webhooks
from bot.services import Services
from storage.db import ping


def create_web_app(services: Services, bolt: App | None) -> Flask:
    web = Flask("alignbot")
    handler = SlackRequestHandler(bolt) if bolt is not None else None

    if handler is not None:
        @web.post("/slack/events")
        def slack_events():
            return handler.handle(request)

    @web.post("/webhooks/<entity>")
    def webhook(entity: str):
        if (request.content_length or 0) > webhooks.MAX_BODY_BYTES:
            answer = webhooks.too_large()  # refuse before reading it
        else:
            answer = webhooks.receive(services, entity, request.headers, request.get_data())
        return jsonify(answer.body), answer.status, answer.headers

    @web.errorhandler(500)
    def internal_error(_error):
        # the transaction was rolled back: say so, in JSON, to the CRM's retry logic
        return jsonify(error="internal error; nothing was stored, retry later"), 500

    @web.get("/healthz")
    def healthz():
        try:
            ping(services.engine)
        except Exception as exc:  # the point of a health check is to say so, not to crash
            return jsonify(ok=False, database=type(exc).__name__), 503
        return jsonify(ok=True, team_id=services.team_id)

    return web


def serve(web: Flask, host: str, port: int, threads: int = 8) -> None:
    from waitress import serve as waitress_serve

    waitress_serve(web, host=host, port=port, threads=threads, ident="alignbot")
