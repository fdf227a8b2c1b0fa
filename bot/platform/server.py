"""The HTTP surface: Slack's events (Bolt's Flask adapter), CRM webhooks, health, readiness and
metrics, served by waitress.

waitress is a production WSGI server that runs in this process, so one `alignbot
run` holds the HTTP threads, the scheduler and the outbox sender together.
"""

from __future__ import annotations

import gc

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response
from slack_sdk.socket_mode.client import BaseSocketModeClient

from bot.app import request_verifier
from bot.intake import webhooks
from bot.platform import telemetry
from bot.platform.manifest import INSTALL_PATH, OAUTH_REDIRECT_PATH
from bot.platform.services import Services
from storage.db import ping

# Bolt reads and parses a body before it checks its signature: what an unsigned request may
# make it read. Slack's own are far smaller (a view of 100 blocks of 3,000 characters is
# under 1.5 MB form-encoded).
MAX_SLACK_BODY_BYTES = 4 * 1024 * 1024
# waitress refuses a body larger than every route takes before reading it (its default is 1
# GB, spooled to disk); the routes' own checks, below it, answer in JSON.
MAX_REQUEST_BYTES = 2 * webhooks.MAX_BODY_BYTES


def create_web_app(services: Services, bolt: App | None, *,
                   socket: BaseSocketModeClient | None = None, monitoring: bool = True) -> Flask:
    """Slack's requests come to /slack/events when `bolt` is given (HTTP mode), or over the
    Socket Mode `socket`, which /healthz then reports on. Without `monitoring`, /readyz and
    /metrics are left to a port of their own (`create_monitoring_app`): this one is public."""
    web = Flask("alignbot")

    if bolt is not None:
        verifier = request_verifier(services.secrets.slack_signing_secret, services.clock)

        @web.post("/slack/events")
        def slack_events():
            if (request.content_length or 0) > MAX_SLACK_BODY_BYTES:
                return jsonify(error="body too large for a Slack request"), 413
            try:
                req = to_bolt_request(request)  # Bolt parses the body before it checks anything
            except Exception:  # noqa: BLE001 - any body it cannot read: not JSON, too deep, a list
                if verifier.is_valid_request(request.get_data(as_text=True), request.headers):
                    return jsonify(error="malformed request body"), 400
                return jsonify(error="invalid request"), 401
            return to_flask_response(bolt.dispatch(req))

        if (flow := bolt.oauth_flow) is not None:  # OAuth mode: Bolt's install pages

            @web.get(INSTALL_PATH)
            def slack_install():
                return to_flask_response(flow.handle_installation(to_bolt_request(request)))

            @web.get(OAUTH_REDIRECT_PATH)
            def slack_oauth_redirect():
                return to_flask_response(flow.handle_callback(to_bolt_request(request)))

    def webhook(entity: str, team_id: str | None = None):
        with telemetry.request("webhook", entity, team_id or services.team_id,
                               services.clock) as answered:
            if (request.content_length or 0) > webhooks.MAX_BODY_BYTES:
                answer = webhooks.too_large()  # refuse before reading it
            else:
                answer = webhooks.receive(services, entity, request.headers, request.get_data(),
                                          team_id)
            answered.status = answer.status
        return jsonify(answer.body), answer.status, answer.headers

    # In OAuth mode the CRM says which workspace its records are for, in the path.
    path = "/webhooks/<team_id>/<entity>" if services.installations else "/webhooks/<entity>"
    web.post(path)(webhook)

    @web.errorhandler(500)
    def internal_error(_error):
        # the transaction was rolled back: say so, in JSON, to the CRM's retry logic
        return jsonify(error="internal error; nothing was stored, retry later"), 500

    _add_health(web, services, socket)
    if monitoring:
        _add_monitoring(web, services, public=True)
    return web


def create_monitoring_app(services: Services, *,
                          socket: BaseSocketModeClient | None = None) -> Flask:
    """/healthz, /readyz and /metrics alone: for a process that serves no requests
    (`alignbot worker`), or on a port of their own beside the public one (`alignbot run
    --monitoring-port`)."""
    web = Flask("alignbot-monitoring")
    _add_health(web, services, socket)
    _add_monitoring(web, services, public=False)
    return web


def _add_monitoring(web: Flask, services: Services, *, public: bool) -> None:
    metrics = telemetry.registry(services)

    @web.get("/metrics")
    def prometheus():
        return Response(generate_latest(metrics), content_type=CONTENT_TYPE_LATEST)

    @web.get("/readyz")
    def readyz():
        checks = telemetry.readiness(services, public=public)
        failed = [name for name, verdict in checks.items() if verdict != "ok"]
        if failed:
            return jsonify(ok=False, failed=failed[0], checks=checks), 503
        return jsonify(ok=True, checks=checks)


def _add_health(web: Flask, services: Services, socket: BaseSocketModeClient | None) -> None:
    @web.get("/healthz")
    def healthz():
        try:
            ping(services.engine)
        except Exception as exc:  # the point of a health check is to say so, not to crash
            return jsonify(ok=False, database=type(exc).__name__), 503
        if socket is not None and not socket.is_connected():  # Slack cannot reach us meanwhile
            return jsonify(ok=False, slack="the Socket Mode connection is down; reconnecting"), 503
        return jsonify(ok=True, team_id=services.team_id)


def serve(web: Flask, host: str, port: int, threads: int = 8) -> None:
    from waitress import serve as waitress_serve

    # What start-up made (modules, the app, its config) lives as long as the process: the
    # collector's full passes, which stop every request, no longer walk its 117,000 objects
    # (30-60 ms a pass).
    gc.collect()  # start-up's garbage first: frozen, it would never be freed
    gc.freeze()
    waitress_serve(web, host=host, port=port, threads=threads, ident="alignbot",
                   max_request_body_size=MAX_REQUEST_BYTES)
