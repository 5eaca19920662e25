"""The labeling page in a real headless browser (Debian's chromium driven by selenium).

Keyboard labeling, undo, reload and a server restart; two browsers on one item; the next
round run from the page. The last test takes the screenshot the README shows
(AL_SCREENSHOT=docs/labeling_page.png writes it there).
Skipped, with the reason, where chromium or chromedriver is not installed (.ci/run installs both).
"""
import os
import shutil
import time
from pathlib import Path

import pytest

from labelnext.labeling.server import LabelServer

selenium = pytest.importorskip("selenium", reason="selenium is not installed (requirements.txt pins it)")
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_server import BUDGET, copy_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")
# The README's screenshot: written only when asked (AL_SCREENSHOT=docs/labeling_page.png), so a
# test run never changes a tracked file; otherwise into the test's own folder.
SCREENSHOT = os.environ.get("AL_SCREENSHOT")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1200,760"]


def _browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browsers():
    opened = []

    def open_one():
        opened.append(_browser())
        return opened[-1]

    yield open_one
    for driver in opened:
        driver.quit()


def _text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def _wait_text(driver, element_id, fragment, timeout=15):
    WebDriverWait(driver, timeout).until(lambda d: fragment in _text(d, element_id),
                                         f"#{element_id} never showed {fragment!r}")


def _press(driver, key):
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def _web_labels(store, items):
    """(item, class name) of each item's current label, where it came from the page."""
    out = []
    for i in items:
        h = store.history(i)
        if h and h[-1]["source"] == "web":
            out.append((i, h[-1]["class_name"]))
    return out


def test_keys_label_undo_reload_and_restart(tmp_path, browsers):
    folder = copy_project(tmp_path)
    server = LabelServer(folder, port=0, annotator="kb").start()
    try:
        sel = [r["index"] for r in server.session.selection()[1]]
        driver = browsers()
        driver.get(server.url)
        _wait_text(driver, "item-meta", f"#1 of {BUDGET}")
        keys = "1231231231"  # blue green red ...
        for k, key in enumerate(keys):
            _press(driver, key)
            _wait_text(driver, "progress-text", f"{k + 1} / {BUDGET} labeled")
        _press(driver, "z")
        _wait_text(driver, "progress-text", f"9 / {BUDGET} labeled")
        _wait_text(driver, "item-meta", f"#10 of {BUDGET}")  # undo goes back to the undone item
        names = {"1": "blue", "2": "green", "3": "red"}
        expected = [(sel[k], names[key]) for k, key in enumerate(keys[:9])]
        assert _web_labels(server.session.store, sel) == expected
        assert {h[-1]["annotator"] for h in map(server.session.store.history, sel[:9])} == {"kb"}
        driver.refresh()
        _wait_text(driver, "item-meta", f"#10 of {BUDGET}")  # resumes at the first unlabeled item
        _wait_text(driver, "progress-text", f"9 / {BUDGET} labeled")
    finally:
        server.stop()
    server = LabelServer(folder, port=0).start()  # a restart: a new process would see the same
    try:
        driver.get(server.url)
        _wait_text(driver, "item-meta", f"#10 of {BUDGET}")
        _wait_text(driver, "progress-text", f"9 / {BUDGET} labeled")
        assert _web_labels(server.session.store, sel) == expected
    finally:
        server.stop()


def test_two_browsers_never_overwrite_each_other_unknowingly(tmp_path, browsers):
    with LabelServer(copy_project(tmp_path), port=0).start() as server:
        item = server.session.selection()[1][0]["index"]
        alice, bob = browsers(), browsers()
        for driver, name in [(alice, "alice"), (bob, "bob")]:
            driver.get(server.url)
            _wait_text(driver, "item-meta", f"#1 of {BUDGET}")
            field = driver.find_element(By.ID, "annotator")
            field.clear()
            field.send_keys(name)
        _press(alice, "1")
        _wait_text(alice, "progress-text", f"1 / {BUDGET} labeled")
        _press(bob, "3")  # bob's page still shows the item unlabeled: refused, and bob is told
        _wait_text(bob, "notice", "labeled by someone else")
        _wait_text(bob, "item-label", "labeled 'blue' by alice")
        history = server.session.store.history(item)
        assert [(h["class_name"], h["annotator"]) for h in history] == [("blue", "alice")]
        _press(bob, "3")  # now bob knows: his label replaces alice's, kept as history
        # "1 / N labeled" is on screen before and after: wait for the store to hold bob's label.
        deadline = time.monotonic() + 10
        while len(server.session.store.history(item)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        history = server.session.store.history(item)
        assert [(h["class_name"], h["annotator"]) for h in history] == [("blue", "alice"), ("red", "bob")]
        _wait_text(alice, "notice", "Another labeler changed 1 item(s): #1 now 'red' by bob", timeout=10)


def test_run_the_next_round_from_the_page(tmp_path, browsers):
    with LabelServer(copy_project(tmp_path), port=0, annotator="kb").start() as server:
        driver = browsers()
        driver.get(server.url)
        _wait_text(driver, "item-meta", f"#1 of {BUDGET}")
        # The true colour of each pool image (u<i>.png has colour i % 3), so accuracy can rise.
        truth = [str(int(Path(server.session.data.train_paths[r["index"]]).stem[1:]) % 3 + 1)
                 for r in server.session.selection()[1]]
        for k in range(BUDGET):
            _press(driver, truth[k])
            _wait_text(driver, "progress-text", f"{k + 1} / {BUDGET} labeled")
        assert driver.find_element(By.ID, "done-msg").is_displayed()
        budget = driver.find_element(By.ID, "budget")
        budget.clear()
        budget.send_keys("6")
        driver.find_element(By.ID, "btn-round").click()
        _wait_text(driver, "job-result", "Round 1: accuracy", timeout=120)
        assert "(24 → 36 labels); 6 new items selected" in _text(driver, "job-result")
        _wait_text(driver, "round-name", "round 1")
        _wait_text(driver, "progress-text", "0 / 6 labeled")
        _press(driver, "2")
        _wait_text(driver, "progress-text", "1 / 6 labeled")
        assert server.session.store.history(server.session.selection()[1][0]["index"])[-1]["round"] == 1
        shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "labeling_page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        driver.find_element(By.ID, "tab-status").click()
        WebDriverWait(driver, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rounds-table tbody tr")) == 2)
        WebDriverWait(driver, 15).until(
            lambda d: d.execute_script("const c = document.getElementById('curve');"
                                       " return !c.hidden && c.complete && c.naturalWidth > 0;"))
