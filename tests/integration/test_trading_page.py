"""The trading page at `/` in Debian's headless Chromium, driven by selenium through chromium-driver.

Real clicks place and cancel an order; the book, "my orders" and the trades update live from the real
stream server, worker and API. A screenshot of the page goes to docs/page.png. This test fails, never
skips, when chromium or chromedriver is missing (`./dev test` installs both).
"""
from __future__ import annotations

import shutil
import tempfile
import uuid

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from orders_app import runtime_of
from orders_app.processes import ROOT_DIR, ApiServer, StreamProcess, WorkerProcess
from orders_app.services.markets import add_market

pytestmark = pytest.mark.slow
PAGE_WAIT_S = 20
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,900")


@pytest.fixture(scope="module")
def services(stack_env):
    worker = WorkerProcess("worker-page", KAFKA_MAX_POLL_INTERVAL_MS="3000")
    stream = StreamProcess("stream-page")
    api = ApiServer("api-page", workers=1, STREAM_PORT=str(stream.port))
    yield api, stream
    api.stop()
    assert stream.stop() == 0
    assert worker.stop() == 0


@pytest.fixture()
def browser():
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "chromium and chromedriver are needed: ./dev test installs Debian's packages"
    with tempfile.TemporaryDirectory(prefix="page-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        yield chrome
        chrome.quit()


def text_of(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def rows(browser, element_id: str) -> list[list[str]]:
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, f"#{element_id} tr")]


def clicked(browser, selector: str) -> bool:
    """Click an element of a table that re-renders; a stale element raises, and the wait finds it again."""
    browser.find_element(By.CSS_SELECTOR, selector).click()
    return True


def test_a_person_places_an_order_sees_it_in_the_book_and_sees_a_trade_happen(services, browser, app, make_user):
    api, _ = services
    ctx = runtime_of(app).ctx
    symbol = "P" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    market = f"{symbol}-{ctx.settings.quote_currency}"
    alice, bob = make_user("alice", USD="10000"), make_user("bob", **{symbol: "10"})
    # the page re-renders its tables as pushes arrive: an element read mid-render is stale, read it again
    wait = WebDriverWait(browser, PAGE_WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

    browser.get(f"{api.url}/?market={market}")
    assert Select(browser.find_element(By.ID, "market")).first_selected_option.text == market
    wait.until(lambda b: text_of(b, "stream-status") == "live")
    browser.find_element(By.ID, "api-key").send_keys(alice.api_key)
    browser.find_element(By.ID, "connect").click()
    wait.until(lambda b: f"user {alice.id}" in text_of(b, "account-status"))

    Select(browser.find_element(By.ID, "side")).select_by_value("buy")
    browser.find_element(By.ID, "price").send_keys("100")
    browser.find_element(By.ID, "quantity").send_keys("2")
    browser.find_element(By.ID, "place").click()
    wait.until(lambda b: rows(b, "book-bids") == [["100", "2"]])
    wait.until(lambda b: [r[1:6] for r in rows(b, "my-orders")] == [["buy", "100", "2", "0", "pending"]])
    order_id = wait.until(lambda b: rows(b, "my-orders")[0][0])  # every read retries a re-rendered table
    wait.until(lambda b: "USD" in [r[0] for r in rows(b, "balances")])

    response = bob.place(currency_symbol=symbol, order_type="sell", price="100", quantity="1.5")  # from the API
    assert response.status_code == 201, response.json
    wait.until(lambda b: [r[1:3] for r in rows(b, "trades")] == [["100", "1.5"]])
    wait.until(lambda b: rows(b, "book-bids") == [["100", "0.5"]])
    wait.until(lambda b: [r[4:6] for r in rows(b, "my-orders")] == [["1.5", "partially_filled"]])
    wait.until(lambda b: [r[0] for r in rows(b, "fills")] == [order_id])
    wait.until(lambda b: "last 100" in text_of(b, "ticker"))
    for price in ("101", "102.5", "104"):  # some depth for the screenshot
        assert bob.place(currency_symbol=symbol, order_type="sell", price=price, quantity="1").status_code == 201
    wait.until(lambda b: len(rows(b, "book-asks")) == 3)
    browser.save_screenshot(str(ROOT_DIR / "docs" / "page.png"))

    wait.until(lambda b: clicked(b, f"#my-orders button[data-order-id='{order_id}']"))
    wait.until(lambda b: rows(b, "my-orders") == [] and rows(b, "book-bids") == [])


HOLD_NEXT_ORDERS_READ = """
// The next GET /api/orders the page makes is sent at once, but its answer is handed to the page only when
// window.releaseHeld() is called: a slow response overtaken by a newer one.
const realFetch = window.fetch;
let held = null;
window.heldSent = false;
window.fetch = (resource, options) => {
  const answer = realFetch(resource, options);
  if (held !== null || window.heldSent || !String(resource).startsWith("/api/orders?")) return answer;
  window.heldSent = true;
  return new Promise((resolve) => { held = () => answer.then(resolve); });
};
window.releaseHeld = (done) => held().then(() => setTimeout(done, 0));  // after the page's continuation ran
"""


def test_an_account_refresh_overtaken_by_a_newer_one_does_not_draw_its_older_orders(services, browser, app,
                                                                                    make_user):
    api, _ = services
    ctx = runtime_of(app).ctx
    symbol = "R" + uuid.uuid4().hex[:9].upper()
    add_market(symbol, ctx)
    alice = make_user("alice", USD="10000")
    wait = WebDriverWait(browser, PAGE_WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{api.url}/?market={symbol}-{ctx.settings.quote_currency}")
    wait.until(lambda b: text_of(b, "stream-status") == "live")
    browser.find_element(By.ID, "api-key").send_keys(alice.api_key)
    browser.find_element(By.ID, "connect").click()
    wait.until(lambda b: f"user {alice.id}" in text_of(b, "account-status"))
    wait.until(lambda b: rows(b, "balances"))  # the connect's own refresh has drawn

    browser.execute_script(HOLD_NEXT_ORDERS_READ)
    first = alice.place(currency_symbol=symbol, order_type="buy", price="10", quantity="1").json["order"]["id"]
    wait.until(lambda b: b.execute_script("return window.heldSent"))  # its push's refresh read the orders
    second = alice.place(currency_symbol=symbol, order_type="buy", price="11", quantity="1").json["order"]["id"]
    wait.until(lambda b: sorted(r[0] for r in rows(b, "my-orders")) == sorted([str(first), str(second)]))

    browser.execute_async_script("window.releaseHeld(arguments[arguments.length - 1])")
    drawn = wait.until(lambda b: sorted(r[0] for r in rows(b, "my-orders")) or ["nothing"])  # read, not awaited
    assert drawn == sorted([str(first), str(second)]), "the older refresh drew over the newer one"
