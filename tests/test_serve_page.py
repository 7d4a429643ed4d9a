"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
upload images, read what the page shows, keep a screenshot."""

import os
import shutil
import time

import httpx
import pytest

from keras_siamese import Gallery
from keras_siamese.serve.app import create_app
from serving import gallery_folder, running, tiny_model

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1100,800")


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("SIAMESE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def wait_for(browser, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda _: condition())


def text_of(browser, selector):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, selector).text


def known_images(tmp_path):
    """A tiny model, a gallery of its 12 images in three classes, and one circle and one square of them."""
    model = tiny_model()
    folder = gallery_folder(tmp_path / "known")
    gallery = Gallery(model)
    gallery.add(folder)
    return model, gallery, sorted((folder / "circle").iterdir())[0], sorted((folder / "square").iterdir())[1]


def test_the_page_compares_and_searches_real_uploads(browser, tmp_path):
    from selenium.webdriver.common.by import By

    model, gallery, circle, square = known_images(tmp_path)
    with running(create_app(model, gallery)) as url:
        with httpx.Client(base_url=url) as client:
            compared = client.post("/compare", files={"image_a": circle.open("rb"), "image_b": square.open("rb")})
            searched = client.post("/search", files={"image": square.open("rb")}, data={"k": "3"})
        compared, searched = compared.json(), searched.json()
        browser.get(url + "/")
        wait_for(browser, lambda: "threshold" in text_of(browser, "#model-info"))
        assert f"threshold {model.threshold:.4f}" in text_of(browser, "#model-info")
        assert "gallery of 12 images" in text_of(browser, "#model-info")

        browser.find_element(By.ID, "compare-a").send_keys(str(circle))
        browser.find_element(By.ID, "compare-b").send_keys(str(square))
        wait_for(browser, lambda: "distance" in text_of(browser, "#compare-result"))
        assert text_of(browser, "#compare-result") == (
            f"{compared['decision']} — distance {compared['distance']:.4f} (threshold {model.threshold:.4f})")

        k = browser.find_element(By.ID, "search-k")
        k.clear()
        k.send_keys("3")
        browser.find_element(By.ID, "search-image").send_keys(str(square))
        cards = lambda: browser.find_elements(By.CSS_SELECTOR, "#neighbours li.neighbour")  # noqa: E731
        wait_for(browser, lambda: len(cards()) == 3)
        shown = [(c.find_element(By.CLASS_NAME, "label").text, c.find_element(By.CLASS_NAME, "distance").text)
                 for c in cards()]
        assert shown == [(n["label"], f"{n['distance']:.4f}") for n in searched["neighbours"]]
        assert shown[0] == ("square", f"{1e-7 ** 0.5:.4f}")  # the query itself is enrolled
        assert text_of(browser, "#search-result").startswith("match: square")
        wait_for(browser, lambda: browser.execute_script(  # every thumbnail has loaded from the server
            "return [...document.querySelectorAll('#neighbours img')].every(i => i.complete && i.naturalWidth > 0)"))

        screenshot = tmp_path / "page.png"
        assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
        if os.environ.get("SIAMESE_SCREENSHOT"):  # e.g. docs/serve_page.png for the README
            shutil.copy(screenshot, os.environ["SIAMESE_SCREENSHOT"])


def test_the_page_shows_the_answer_to_the_latest_search_only(browser, tmp_path):
    """A slow answer to an earlier request does not overwrite, or add to, the answer to a later one."""
    import asyncio

    from selenium.webdriver.common.by import By

    model, gallery, circle, square = known_images(tmp_path)
    app = create_app(model, gallery)
    searches = []

    async def first_search_slow(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/search":
            searches.append(scope["path"])
            if len(searches) == 1:
                await asyncio.sleep(3)
        await app(scope, receive, send)

    with running(first_search_slow) as url:
        browser.get(url + "/")
        wait_for(browser, lambda: "threshold" in text_of(browser, "#model-info"))
        k = browser.find_element(By.ID, "search-k")
        k.clear()
        k.send_keys("3")
        chooser = browser.find_element(By.ID, "search-image")
        chooser.send_keys(str(circle))  # answered last
        wait_for(browser, lambda: len(searches) == 1)
        chooser.send_keys(str(square))
        wait_for(browser, lambda: text_of(browser, "#search-result").startswith("match"))
        assert text_of(browser, "#search-result").startswith("match: square")
        time.sleep(4)  # the slow answer about the circle has arrived by now
        cards = browser.find_elements(By.CSS_SELECTOR, "#neighbours li.neighbour")
        assert text_of(browser, "#search-result").startswith("match: square")
        assert [c.find_element(By.CLASS_NAME, "label").text for c in cards][:1] == ["square"] and len(cards) == 3
