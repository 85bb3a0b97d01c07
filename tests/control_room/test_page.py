"""The control room's page in a real browser: headless Chromium (Debian's package) driven by
Playwright, against a control room and the sandbox started by fixtures. Screenshots of each
page go to test-output/screenshots/ (or $ADOBOT_SCREENSHOTS) for a person to look at."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADOBOT, DEMO_PAT, ROOT
from tests.control_room.conftest import CANARY, issue

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed, so the browser tests did NOT run "
                             "(apt-get install chromium; .ci/run installs it)")
SHOTS = Path(os.environ.get("ADOBOT_SCREENSHOTS") or ROOT / "test-output" / "screenshots")
# As this machine's probe starts it: no background traffic to a network that is closed.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15000)
    yield opened
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, room, token: str) -> None:
    page.goto(room.url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Connections").wait_for()


def test_sign_in_add_edit_and_delete_a_connection(page, room, state, organizations):
    page.goto(room.url + "/")
    shot(page, "1-sign-in")
    page.get_by_label("API token").fill("adobot_wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("not known to this control room").wait_for()
    sign_in(page, room, issue(state, "administrator", "alice"))
    page.get_by_text("alice (Administrator)").wait_for()

    page.get_by_role("button", name="Add a connection").click()
    page.get_by_label("Name", exact=True).fill("1st")
    page.get_by_text("connection name '1st' is not valid").wait_for()
    page.get_by_label("Name", exact=True).fill("contoso-main")
    assert page.locator("#c-name-error").inner_text() == ""
    page.get_by_label("Organization", exact=True).fill("bad-")
    page.get_by_text("is not a valid organization name").wait_for()
    page.get_by_label("Organization", exact=True).fill(organizations.org_url())
    page.get_by_label("Personal access token", exact=True).fill("sandbox-expired-pat")
    page.get_by_role("button", name="Test and save").click()
    alert = page.locator("#connection-error")
    alert.get_by_text("expired").wait_for()
    shot(page, "2-connection-refused")
    assert state.connections.list() == []  # nothing saved
    assert page.get_by_label("Personal access token", exact=True).input_value() == ""

    page.get_by_label("Personal access token", exact=True).fill(CANARY)
    page.get_by_role("button", name="Test and save").click()
    row = page.locator("tr[data-name=contoso-main]")
    row.get_by_text("Connected as Canary Admin").wait_for()
    shot(page, "3-connections")

    page.get_by_role("button", name="Edit contoso-main").click()
    assert page.get_by_label("New personal access token", exact=True).input_value() == ""  # never prefilled
    assert page.get_by_label("Organization", exact=True).input_value() == organizations.org_url()
    page.get_by_label("Default project (optional)", exact=True).fill("NoSuchProject")
    page.get_by_role("button", name="Test and save").click()
    page.locator("#connection-error").get_by_text("does not exist").wait_for()
    page.get_by_label("Default project (optional)", exact=True).fill("Payments")
    page.get_by_role("button", name="Test and save").click()
    row.get_by_role("cell", name="Payments").wait_for()
    assert state.connections.get("contoso-main").project == "Payments"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete contoso-main").click()
    page.get_by_text("No connections yet.").wait_for()
    assert state.connections.list() == []
    assert CANARY not in page.content()


def test_bulk_delete(page, room, state, admin, organizations):
    for number in range(3):
        assert admin.post("/api/v1/connections", json={
            "name": f"conn-{number}", "organization": organizations.org_url(f"org{number}"),
            "pat": DEMO_PAT}).status_code == 201
    sign_in(page, room, admin.token)
    page.get_by_label("Select conn-0").check()
    page.get_by_label("Select conn-2").check()
    page.once("dialog", lambda dialog: dialog.dismiss())  # a change of mind keeps them
    page.get_by_role("button", name="Remove selected (2)").click()
    assert len(state.connections.list()) == 3
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove selected (2)").click()
    page.locator("tr[data-name=conn-0]").wait_for(state="detached")
    assert [c.name for c in state.connections.list()] == ["conn-1"]


def test_a_standard_user_sees_the_list_and_no_controls(page, room, state, admin, organizations):
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": DEMO_PAT,
                                            "organization": organizations.org_url()})
    sign_in(page, room, issue(state, "standard", "bob"))
    page.locator("tr[data-name=contoso-main]").get_by_text("Connected").wait_for()
    shot(page, "4-standard-user")
    for name in ("Add a connection", "Remove selected", "Edit contoso-main",
                 "Delete contoso-main", "Test contoso-main"):
        assert not page.get_by_role("button", name=name).is_visible()
    assert page.get_by_role("checkbox").count() == 0


def test_an_actions_form_makes_a_step_that_validates(page, room, state, tmp_path):
    sign_in(page, room, issue(state, "standard", "bob"))
    page.get_by_role("link", name="Actions").click()
    for group in ("Session", "Repos", "Pipelines", "Boards", "Wiki", "Bots"):
        page.get_by_role("heading", name=group, exact=True).wait_for()

    page.get_by_role("button", name="Connect to Azure DevOps").click()
    form = page.get_by_role("form", name="Inputs of Connect")
    form.get_by_label("organization_url").fill("https://dev.azure.com/contoso")
    form.get_by_label("project").fill("bad/name")
    page.locator("#in-project-error").get_by_text("does not match").wait_for()
    form.get_by_label("project").fill("Payments")
    assert page.locator("#in-project-error").inner_text() == ""
    token = form.get_by_label("Where the secret comes from").first
    assert "written in the bot (insecure)" in token.inner_text()
    token.select_option("insecure")
    form.get_by_label("Token (never shown again)").first.fill("canary-insecure-123")
    form.get_by_role("button", name="Make the step").click()
    assert "canary-insecure-123" not in page.locator("#step-yaml").input_value()
    assert '"insecure":"***"' in page.locator("#step-yaml").input_value()
    token.select_option("variable")
    form.get_by_label("Variable name").first.fill("pat")
    form.locator("#in-session").fill("ado")
    form.get_by_label("session: scope").select_option("global")
    form.get_by_role("button", name="Make the step").click()
    connect = page.locator("#step-yaml").input_value()
    shot(page, "5-action-form")

    page.get_by_role("button", name="List repositories").click()
    form = page.get_by_role("form", name="Inputs of ListRepos")
    form.locator("#in-session").fill("ado")
    form.get_by_label("name_filter").fill("pay*")
    form.get_by_role("button", name="Make the step").click()
    listing = page.locator("#step-yaml").input_value()

    indent = lambda text: "".join(f"  {line}\n" for line in text.splitlines())  # noqa: E731
    bot = tmp_path / "made.yaml"
    bot.write_text("name: made\nsteps:\n" + indent(connect) + indent(listing))
    done = subprocess.run([str(ADOBOT), "validate", str(bot), "--var", "pat"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, bot.read_text() + done.stdout + done.stderr
    assert "personal_access_token" in connect and "global" in connect


def test_checking_a_broken_bot_and_running_a_good_one(page, room, state):
    sign_in(page, room, issue(state, "standard", "bob"))
    page.get_by_role("link", name="Check a bot").click()
    page.get_by_label("Bot file (YAML)").fill(
        "name: broken\nsteps:\n  - action: ListRepoz\n  - action: CreateRepo\n"
        "    inputs: {name: '${service}'}\n")
    page.get_by_role("button", name="Check").click()
    heading = page.locator("#check-heading")
    heading.get_by_text("problems found").wait_for()
    findings = page.locator(".findings li")
    texts = [findings.nth(n).inner_text() for n in range(findings.count())]
    assert any("line 3" in text and "ListRepoz" in text for text in texts), texts
    assert any("'service' is not defined" in text for text in texts), texts
    shot(page, "6-check-a-bot")

    page.get_by_label("Bot file (YAML)").fill((ROOT / "examples" / "quickstart.yaml").read_text())
    page.get_by_label("Variables for a run (NAME=VALUE, one per line)").fill(f"pat={DEMO_PAT}")
    page.get_by_role("button", name="Run in the sandbox").click()
    page.locator("#run-heading").get_by_text(re.compile("The run succeeded: 8 steps")).wait_for(
        timeout=60000)
    assert page.locator("#run-steps tbody tr").count() == 8
    shot(page, "7-run")


def test_keyboard_alone_labels_and_phone_width(browser, room, state):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(room.url + "/")
        page.keyboard.type(issue(state, "administrator", "alice"))  # the field has the focus
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Connections").wait_for()
        reached = []
        for _ in range(12):  # Tab reaches the sections and the controls
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.textContent.trim()"))
        assert {"Actions", "Check a bot", "Add a connection"} <= set(reached), reached
        for _ in range(12):  # back to the button, and press it
            page.keyboard.press("Shift+Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == "Add a connection":
                break
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "c-name"
        for view in ("connections", "actions", "check"):
            page.goto(f"{room.url}/#{view}")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(c => c.type !== 'hidden' && !c.labels.length && !c.getAttribute('aria-label'))
            .map(c => c.id || c.name)""")
        assert unlabelled == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, "8-phone-width")
    finally:
        context.close()


def everything_on_the_page(page) -> str:
    """Every text and every control's value, hidden or not: what the next person could find."""
    return page.evaluate("""() => document.body.textContent + '\\n' +
        [...document.querySelectorAll('input, textarea, select')].map(c => c.value).join('\\n')""")


def test_sign_out_forgets_what_the_last_person_typed_and_saw(page, room, state, admin,
                                                            organizations):
    """Alice leaves a half-filled edit with a new PAT, her bot, its variables and a run on its
    way; after sign-out Bob, at the same screen, finds none of it, and her run's answer (had it
    come) is never shown."""
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": DEMO_PAT,
                                             "organization": organizations.org_url()})
    sign_in(page, room, issue(state, "administrator", "alice-private"))
    page.get_by_role("button", name="Edit contoso-main").click()
    page.get_by_label("New personal access token", exact=True).fill(CANARY)
    page.get_by_label("Default project (optional)", exact=True).fill("AliceProject")

    page.get_by_role("link", name="Actions").click()
    page.get_by_role("button", name="Connect to Azure DevOps").click()
    page.get_by_role("form", name="Inputs of Connect").get_by_label("project").fill("AliceInputs")

    page.get_by_role("link", name="Check a bot").click()
    page.get_by_label("Bot file (YAML)").fill(
        (ROOT / "examples" / "quickstart.yaml").read_text().replace("name: ", "name: alice-", 1))
    page.get_by_label("Variables for a run (NAME=VALUE, one per line)").fill(
        f"pat={DEMO_PAT}\nsecret=alice-variable-{CANARY}")
    with page.expect_event("requestfailed",
                           lambda request: request.url.endswith("/bots/run")) as failed:
        page.get_by_role("button", name="Run in the sandbox").click()
        page.get_by_role("button", name="Sign out").click()
    assert failed.value.failure  # the run was let go, not left to answer into the page
    page.get_by_text("Signed out.").wait_for()

    left = everything_on_the_page(page)
    for trace in (CANARY, "alice", "AliceProject", "AliceInputs", "contoso-main"):
        assert trace not in left, trace
    sign_in(page, room, issue(state, "standard", "bob"))
    for view in ("Actions", "Check a bot"):
        page.get_by_role("link", name=view).click()
    assert page.get_by_label("Bot file (YAML)").input_value() == ""
    assert page.locator("#run-result").inner_text() == ""
    left = everything_on_the_page(page)
    for trace in (CANARY, "alice", "AliceProject", "AliceInputs"):
        assert trace not in left, trace
