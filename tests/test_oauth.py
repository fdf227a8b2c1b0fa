"""OAuth mode (many workspaces): installs over HTTP through Bolt's flow and slack_sdk's stores,
each workspace's Slack calls made with its own bot token, and an uninstall that stops them."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.cli import main
from bot.intake.webhooks import secret_of, signature
from bot.local.fakeslack import FakeSlack
from bot.platform.config import Secret, Secrets, parse_config
from bot.platform.installations import UNINSTALLED
from bot.platform.runtime import build_services
from bot.platform.scheduler import run_job
from bot.platform.server import create_web_app
from bot.surveys import runs
from storage.db import make_engine
from storage.models import (
    SLACK_BOTS,
    SLACK_OAUTH_STATES,
    Lead,
    OutboxMessage,
    Person,
    SurveyInvite,
    SurveyRun,
)
from tests.conftest import TEST_CONFIG, Inline
from tests.processes import over_http, run_env, serving
from tests.slack import SIGNING_SECRET, request
from tests.test_cli import EXAMPLE
from tests.test_survey_schedule import SURVEY

WEBHOOK_SECRET = "whsec-test-0123456789"
A, B = "T0AAAAAAA", "T0BBBBBBB"


@pytest.fixture
def oauth(config, clock, engine, fake_slack):
    """alignbot in OAuth mode: client id and secret, no bot token."""
    return in_oauth_mode(config, clock, engine, fake_slack)


def in_oauth_mode(config, clock, engine, fake_slack):
    secrets = Secrets(slack_signing_secret=Secret(SIGNING_SECRET), slack_client_id=Secret("111.222"),
                      slack_client_secret=Secret("oauth-client-secret"),
                      webhook_secret=Secret(WEBHOOK_SECRET))
    assert secrets.oauth
    services = build_services(config, secrets, clock, engine=engine,
                              slack=fake_slack.client(token=None))
    app = create_app(services, after_ack=Inline())
    return services, app, create_web_app(services, app).test_client()


def install(web, fake, team_id: str) -> str:
    """A workspace's admin opens /slack/install, allows the app on Slack, comes back with the
    code: the bot token Slack handed out for that workspace."""
    page = web.get("/slack/install")
    assert page.status_code == 200
    state = re.search(r"state=([\w-]+)", page.get_data(as_text=True)).group(1)
    done = web.get(f"/slack/oauth_redirect?{urlencode({'code': fake.allow_install(team_id), 'state': state})}")
    assert done.status_code == 200, done.get_data(as_text=True)
    return next(t for t, team in fake.installed.items() if team == team_id)


def webhook(web, services, team_id: str, n: int, secret: str | None = None):
    """A lead for `team_id`, signed with that workspace's secret (else `secret`)."""
    body = json.dumps({"external_id": f"L-{n:05d}", "source": "webinar", "name": f"Person {n}",
                       "email": f"p{n}@prospect.example", "company": "Acme", "score": 50,
                       "owner_email": "sam@example.com"}).encode()
    ts = str(int(services.clock.now().timestamp()))
    secret = secret or secret_of(services, team_id)
    return web.post(f"/webhooks/{team_id}/leads", data=body, content_type="application/json",
                    headers={"X-Alignbot-Timestamp": ts,
                             "X-Alignbot-Signature": signature(secret, ts, body)})


def event(app, clock, team_id: str, payload: dict, event_id: str):
    body = json.dumps({"token": "legacy", "team_id": team_id, "api_app_id": "A0LOCAL",
                       "event": payload, "type": "event_callback", "event_id": event_id,
                       "event_time": 1764000000,
                       "authorizations": [{"team_id": team_id, "user_id": "U0ALIGNBOT",
                                           "is_bot": True}]})
    return app.dispatch(request(body, "application/json", clock.now()))


def slash(app, clock, team_id: str, text: str):
    body = urlencode({"token": "legacy", "team_id": team_id, "channel_id": "C0HANDOFF1",
                      "user_id": "U0SALES01", "command": "/align", "text": text,
                      "api_app_id": "A0LOCAL", "trigger_id": "1.2.3",
                      "response_url": "https://hooks.slack.invalid/respond"})
    resp = app.dispatch(request(body, "application/x-www-form-urlencoded", clock.now()))
    assert resp.status == 200, resp.body
    return json.loads(resp.body)["text"]


def said(fake, token: str) -> str:
    """Every call made to Slack with this token, method and arguments (posts, edits, Homes)."""
    return json.dumps([[method, args] for (method, args), used
                       in zip(fake.calls, fake.tokens, strict=True) if used == token])


def test_install_over_http_stores_the_workspace_and_its_token(oauth, fake_slack):
    services, _, web = oauth
    page = web.get("/slack/install")
    assert "slack-app-oauth-state=" in page.headers["Set-Cookie"]  # the browser's half of the state
    assert "client_id=111.222" in page.get_data(as_text=True)
    token = install(web, fake_slack, A)
    assert services.installations.teams() == [A]
    assert services.for_team(A).slack.token == token
    [access] = fake_slack.calls_of("oauth.v2.access")
    assert access["code"].startswith(f"code-{A}-")
    with services.sessions.begin() as s:  # the config's people, synced into the new workspace
        assert s.scalar(select(Person.slack_id).where(Person.team_id == A,
                                                      Person.email == "sam@example.com"))
    assert webhook(web, services, A, 1).status_code == 200


@pytest.mark.parametrize(("query", "with_cookie", "reason"), [
    ({"code": "never-issued"}, True, "invalid_code"),  # a code Slack did not give
    ({}, True, "missing_code"),
    ({"code": "x", "state": "forged"}, True, "invalid_browser"),  # not this browser's state
    ({"code": "x"}, False, "invalid_browser"),  # no state at all
])
def test_a_bad_or_missing_state_or_code_gets_an_error_page(oauth, fake_slack, query, with_cookie,
                                                           reason):
    services, _, web = oauth
    page = web.get("/slack/install")
    state = re.search(r"state=([\w-]+)", page.get_data(as_text=True)).group(1)
    if not with_cookie:
        web.delete_cookie("slack-app-oauth-state")
    resp = web.get(f"/slack/oauth_redirect?{urlencode({'state': state, **query})}")
    assert resp.status_code in (400, 401)
    text = resp.get_data(as_text=True)
    assert "Something Went Wrong" in text and f"reason: {reason}" in text
    assert 'href="/slack/install"' in text  # where to try again
    assert services.installations.teams() == []


def test_a_state_is_good_for_one_install_only(oauth, fake_slack):
    services, _, web = oauth
    page = web.get("/slack/install")
    state = re.search(r"state=([\w-]+)", page.get_data(as_text=True)).group(1)
    query = {"code": fake_slack.allow_install(A), "state": state}
    assert web.get(f"/slack/oauth_redirect?{urlencode(query)}").status_code == 200
    web.set_cookie("slack-app-oauth-state", state)
    query["code"] = fake_slack.allow_install(B)
    replay = web.get(f"/slack/oauth_redirect?{urlencode(query)}")
    assert replay.status_code == 401 and "reason: invalid_state" in replay.get_data(as_text=True)
    assert services.installations.teams() == [A]


def test_install_links_nobody_finished_are_not_kept_for_good(oauth, fake_slack, clock):
    """/slack/install is public: each visit stores a state. Those never used (a crawler, an
    admin who changed their mind) were kept for ever; now each visit drops the expired."""
    services, _, web = oauth

    def states() -> list[str]:
        with services.sessions() as s:
            return list(s.scalars(select(SLACK_OAUTH_STATES.c.state)))

    def visit() -> str:
        page = web.get("/slack/install").get_data(as_text=True)
        return re.search(r"state=([\w-]+)", page).group(1)

    abandoned = [visit() for _ in range(5)]
    assert sorted(states()) == sorted(abandoned)
    clock.advance(timedelta(minutes=10, seconds=1))  # the links' 10 minutes are over
    fresh = visit()
    assert states() == [fresh]
    web.set_cookie("slack-app-oauth-state", abandoned[0])
    late = web.get(f"/slack/oauth_redirect?{urlencode({'code': fake_slack.allow_install(A), 'state': abandoned[0]})}")
    assert late.status_code == 401 and "reason: invalid_state" in late.get_data(as_text=True)
    clock.advance(timedelta(minutes=9))  # within its 10 minutes on alignbot's clock: good
    web.set_cookie("slack-app-oauth-state", fresh)
    done = web.get(f"/slack/oauth_redirect?{urlencode({'code': fake_slack.allow_install(A), 'state': fresh})}")
    assert done.status_code == 200 and services.installations.teams() == [A]
    assert states() == []


def test_two_workspaces_see_nothing_of_each_other(oauth, fake_slack, clock):
    services, app, web = oauth
    token_a, token_b = install(web, fake_slack, A), install(web, fake_slack, B)
    for team, n in ((A, 1), (B, 2), (B, 3)):  # the same owner's email in both workspaces
        assert webhook(web, services, team, n).status_code == 200
    services.sender.flush()  # cards and the owner's DMs
    refreshed = run_job(services, "metrics.refresh")  # once per workspace, each its own
    assert {team: report.team_id for team, report in refreshed.items()} == {A: A, B: B}
    clock.advance(timedelta(hours=5))  # past the 4-business-hour SLA: reminders and breaches
    # the breach, to owner and manager, for each lead: each nudge for its lead's workspace
    assert run_job(services, "sla.sweep").sent == 2 * 3
    services.sender.flush()
    for team in (A, B):
        assert event(app, clock, team, {"type": "app_home_opened", "user": "U0SALES01",
                                        "tab": "home"}, f"Ev-home-{team}").status == 200
    in_a, in_b = said(fake_slack, token_a), said(fake_slack, token_b)
    assert "Person 1" in in_a and "Person 2" not in in_a and "Person 3" not in in_a
    assert "Person 2" in in_b and "Person 3" in in_b and "Person 1" not in in_b
    for text, open_leads in ((in_a, 1), (in_b, 2)):
        breached = text.count("SLA breached: lead ") + sum(
            int(n) for n in re.findall(r"SLA breached: (\d+) of your", text))
        assert breached >= open_leads  # each workspace's own nudges (a person's in one DM)
        assert '"views.publish"' in text and f"Your open leads ({open_leads})" in text  # Home
    # every call the bot made carried an installed workspace's token: none went without
    assert {t for (m, _), t in zip(fake_slack.calls, fake_slack.tokens, strict=True)
            if m != "oauth.v2.access"} == {token_a, token_b}
    # metrics and leads answer from the asker's workspace alone
    assert slash(app, clock, A, "metric leads routed last 7 days").endswith(": 1")
    assert slash(app, clock, B, "metric leads routed last 7 days").endswith(": 2")
    assert "No lead `L-00001`" in slash(app, clock, B, "lead L-00001")
    assert "Person 1" in slash(app, clock, A, "lead L-00001")
    # auth.test: once at each install, then once for each workspace's token, not every request
    assert len(fake_slack.calls_of("auth.test")) == 2 + 2


def test_uninstall_stops_the_workspaces_deliveries_and_jobs(oauth, fake_slack, clock):
    services, app, web = oauth
    token_a, token_b = install(web, fake_slack, A), install(web, fake_slack, B)
    assert webhook(web, services, B, 2).status_code == 200  # queued, not yet sent
    assert event(app, clock, B, {"type": "app_uninstalled"}, "Ev-gone").status == 200
    calls_before = len(fake_slack.tokens)
    assert services.installations.teams() == [A]
    with services.sessions.begin() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.team_id == B)).all()
        assert rows and {(r.state, r.last_error) for r in rows} == {("dead", UNINSTALLED)}
        assert s.scalars(select(Lead.team_id)).all() == [B]  # its data stays until retention
    assert webhook(web, services, A, 1).status_code == 200
    services.sender.flush()
    clock.advance(timedelta(hours=5))
    refreshed = run_job(services, "metrics.refresh")  # the jobs skip it
    assert {team: report.team_id for team, report in refreshed.items()} == {A: A}
    assert run_job(services, "sla.sweep").sent == 2  # A's breach, to owner and manager; B's: none
    services.sender.flush()
    assert token_b not in fake_slack.tokens[calls_before:]
    assert "Person 1" in said(fake_slack, token_a)
    gone = webhook(web, services, B, 3)
    assert gone.status_code == 404 and B in gone.get_json()["error"]


def test_the_survey_sweep_runs_once_and_opens_each_workspaces_run(config, clock, engine,
                                                                  fake_slack):
    surveyed = parse_config({**TEST_CONFIG, "surveys": [SURVEY]}, "<tests>")
    services, _, web = in_oauth_mode(surveyed, clock, engine, fake_slack)
    install(web, fake_slack, A), install(web, fake_slack, B)
    clock.set(datetime.fromisoformat("2026-11-30T10:00:00-05:00"))  # the schedule's Monday
    swept = run_job(services, "surveys.sweep")  # not once a workspace: every invite is due once
    assert swept["opened"] == 2 and swept["prompted"] > 0
    assert run_job(services, "surveys.sweep") == {"opened": 0, "prompted": 0, "reminded": 0,
                                                   "closed": 0}
    with services.sessions.begin() as s:
        assert sorted(s.scalars(select(SurveyRun.team_id))) == [A, B]
        invited = s.execute(select(SurveyInvite.team_id, func.count())
                            .where(SurveyInvite.prompted_at.is_not(None))
                            .group_by(SurveyInvite.team_id)).all()
    assert dict(invited).keys() == {A, B} and sum(n for _, n in invited) == swept["prompted"]


def test_one_workspaces_failing_survey_schedule_holds_up_no_other(config, clock, engine,
                                                                   fake_slack, monkeypatch, caplog):
    surveyed = parse_config({**TEST_CONFIG, "surveys": [SURVEY]}, "<tests>")
    services, _, web = in_oauth_mode(surveyed, clock, engine, fake_slack)
    install(web, fake_slack, A), install(web, fake_slack, B)
    clock.set(datetime.fromisoformat("2026-11-30T10:00:00-05:00"))
    opens = runs.open_scheduled

    def broken_in_a(team, now):
        if team.team_id == A:
            raise RuntimeError("a bug in A's survey")
        return opens(team, now)

    monkeypatch.setattr(runs, "open_scheduled", broken_in_a)
    swept = run_job(services, "surveys.sweep")
    assert swept["opened"] == 1 and swept["prompted"] > 0  # B's run, and its prompts
    assert f"surveys.sweep failed for workspace {A}" in caplog.text
    with services.sessions.begin() as s:
        assert s.scalars(select(SurveyRun.team_id)).all() == [B]


def test_a_row_of_a_workspace_without_a_token_dies_unsent(oauth, fake_slack):
    services, _, web = oauth
    install(web, fake_slack, A)
    assert webhook(web, services, A, 1).status_code == 200
    services.installations.forget(A)  # as another process would on an uninstall
    report = services.sender.flush()
    assert report.sent == 0 and report.dead >= 1
    assert not fake_slack.calls_of("chat.postMessage")


def test_a_workspace_installed_again_is_delivered_to_by_every_process_at_once(
        config, clock, engine, fake_slack):
    """A worker that had found a workspace not installed kept that answer for a minute: a
    message queued as the workspace installed alignbot (again) in the app's process died
    unsent, "uninstalled"."""
    services, _, web = in_oauth_mode(config, clock, engine, fake_slack)
    worker, _, _ = in_oauth_mode(config, clock, engine, fake_slack)
    assert worker.installations.token(A) is None  # asked before the install
    install(web, fake_slack, A)
    assert webhook(web, services, A, 1).status_code == 200
    report = worker.sender.flush()
    assert report.dead == 0 and report.sent >= 1
    assert "Person 1" in said(fake_slack, worker.installations.token(A))


def test_a_user_token_revoked_leaves_the_workspace_installed(oauth, fake_slack, clock):
    services, app, web = oauth
    install(web, fake_slack, A)
    for n, tokens in enumerate(({"oauth": ["U0SALES01"]}, {}, None)):
        payload = {"type": "tokens_revoked", **({"tokens": tokens} if tokens is not None else {})}
        assert event(app, clock, A, payload, f"Ev-rev-{n}").status == 200
    assert services.installations.teams() == [A]
    assert event(app, clock, A, {"type": "tokens_revoked", "tokens": {"bot": ["U0ALIGNBOT"]}},
                 "Ev-rev-bot").status == 200
    assert services.installations.teams() == []


def test_webhooks_name_their_workspace_in_oauth_mode(oauth, fake_slack):
    services, _, web = oauth
    install(web, fake_slack, A)
    assert web.post("/webhooks/leads", data=b"{}").status_code == 404  # which workspace?
    assert webhook(web, services, B, 1).status_code == 404  # signed for B, which has not installed
    # who cannot sign learns nothing of which workspaces have installed alignbot
    unsigned = [web.post(f"/webhooks/{team}/leads", data=b"{}") for team in (A, B, "not a team")]
    assert {(r.status_code, r.get_json()["error"]) for r in unsigned} == \
        {(401, "missing X-Alignbot-Timestamp or X-Alignbot-Signature")}
    forged = [webhook(web, services, team, 2, secret="whsec_guess") for team in (A, B)]
    assert [r.status_code for r in forged] == [401, 401]


def test_a_workspaces_crm_cannot_write_into_another_workspace(oauth, fake_slack):
    services, _, web = oauth
    install(web, fake_slack, A), install(web, fake_slack, B)
    secret_a = secret_of(services, A)
    assert secret_a not in (WEBHOOK_SECRET, secret_of(services, B))
    into_b = webhook(web, services, B, 1, secret=secret_a)  # A's CRM, at B's path
    assert into_b.status_code == 401 and f"alignbot --team {B} webhook-secret" in \
        into_b.get_json()["error"]
    # the deployment's own secret opens no workspace: every CRM would hold it
    assert webhook(web, services, A, 2, secret=WEBHOOK_SECRET).status_code == 401
    assert webhook(web, services, A, 3, secret=secret_a).status_code == 200
    with services.sessions.begin() as s:
        assert s.execute(select(Lead.team_id, Lead.external_id)).all() == [(A, "L-00003")]


def cli_in_oauth_mode(monkeypatch, services, fake_slack) -> None:
    """The command line's environment: the same store and fake Slack, in OAuth mode."""
    monkeypatch.setenv("DATABASE_URL", services.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "oauth-client-secret")
    monkeypatch.setenv("SLACK_API_URL", fake_slack.base_url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def test_the_cli_prints_each_workspaces_webhook_secret(oauth, fake_slack, monkeypatch, capsys):
    services, _, web = oauth
    install(web, fake_slack, A)
    cli_in_oauth_mode(monkeypatch, services, fake_slack)
    monkeypatch.delenv("ALIGNBOT_TEAM_ID", raising=False)
    monkeypatch.delenv("ALIGNBOT_WEBHOOK_SECRET", raising=False)
    assert main(["--team", A, "webhook-secret"]) == 2  # no secret: webhooks are off
    assert "ALIGNBOT_WEBHOOK_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("ALIGNBOT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    assert main(["--team", A, "webhook-secret"]) == 0
    out = capsys.readouterr()
    assert f"POST /webhooks/{A}/<entity>" in out.err
    assert webhook(web, services, A, 1, secret=out.out.strip()).status_code == 200
    assert main(["webhook-secret"]) == 0  # the store's only workspace
    assert capsys.readouterr().out.strip() == out.out.strip()


def test_single_workspace_mode_stays_the_default(services):
    assert not services.secrets.oauth and services.installations is None
    assert services.for_team("T0OTHER") is services
    both = Secrets(slack_bot_token=Secret("xoxb-1"), slack_client_id=Secret("1.2"),
                   slack_client_secret=Secret("s"))
    assert not both.oauth  # a bot token keeps single-workspace mode


def test_cli_commands_act_for_the_workspace_named(oauth, fake_slack, monkeypatch, capsys):
    services, _, web = oauth
    for team in (A, B):
        install(web, fake_slack, team)
    for team, n in ((A, 1), (B, 2), (B, 3)):
        assert webhook(web, services, team, n).status_code == 200
    cli_in_oauth_mode(monkeypatch, services, fake_slack)

    def routed(*team: str) -> int:
        capsys.readouterr()
        assert main([*team, "query", "leads routed 2026-11-01..2026-11-30", "--json"]) == 0
        return json.loads(capsys.readouterr().out)["value"]

    monkeypatch.setenv("ALIGNBOT_TEAM_ID", B)
    assert routed() == 2
    assert routed("--team", A) == 1  # --team wins over ALIGNBOT_TEAM_ID
    monkeypatch.delenv("ALIGNBOT_TEAM_ID")
    capsys.readouterr()
    assert main(["query", "leads routed 2026-11-01..2026-11-30"]) == 2  # which of the two?
    assert "ALIGNBOT_TEAM_ID: set it (or --team)" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "problem"), [
    ({}, "SLACK_SIGNING_SECRET (OAuth mode serves Slack over HTTP) is not set"),
    ({"SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1"}, "OAuth mode (SLACK_CLIENT_ID"),
])
def test_run_in_oauth_mode_says_what_is_missing(monkeypatch, capsys, env, problem):
    for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(var, raising=False)
    for var, value in {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c", **env}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("ALIGNBOT_CONFIG", str(EXAMPLE))
    assert main(["run"]) == 2
    assert problem in capsys.readouterr().err


def test_the_manifest_gives_the_redirect_url_and_the_uninstall_events(capsys):
    assert main(["manifest", "--url", "https://bot.example.com/"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["oauth_config"]["redirect_urls"] == ["https://bot.example.com/slack/oauth_redirect"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])


def test_alignbot_run_installs_a_workspace_over_real_http(tmp_path, sqlite_template):
    """The install as a browser makes it, against `alignbot run` as a process."""
    fake = FakeSlack()
    with over_http(fake) as api_url:
        env = run_env(tmp_path, sqlite_template, SLACK_CLIENT_ID="111.222",
                      SLACK_CLIENT_SECRET="oauth-client-secret",
                      SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url)
        with serving(env, tmp_path) as (base, _):
            with urllib.request.urlopen(f"{base}/slack/install", timeout=10) as resp:
                state = re.search(r"state=([\w-]+)", resp.read().decode()).group(1)
                cookie = resp.headers["Set-Cookie"].split(";")[0]
            query = urlencode({"code": fake.allow_install(A), "state": state})
            back = urllib.request.Request(f"{base}/slack/oauth_redirect?{query}",
                                          headers={"Cookie": cookie})
            with urllib.request.urlopen(back, timeout=10) as resp:
                assert resp.status == 200 and "Thank you!" in resp.read().decode()
            with pytest.raises(urllib.error.HTTPError) as replay:  # the state was used up
                urllib.request.urlopen(back, timeout=10)
            assert replay.value.code == 401
    engine = make_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(SLACK_BOTS.c.team_id, SLACK_BOTS.c.bot_token)).all()
    engine.dispose()
    assert rows == [(A, next(iter(fake.installed)))]
