"""The viewer in a real browser (headless Debian chromium driven by selenium).

Skipped with a message when chromium, chromedriver or selenium is missing
(``apt-get install chromium chromium-driver``; scripts/test.sh installs them as root).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from deep3dmm.analysis.latent import decode as torch_decode
from deep3dmm.train import load_run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DEEP3DMM_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--window-size=1000,700",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "no browser: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver) to run the viewer's browser test"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, script, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.execute_script(f"return ({script});"):
            return
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {script!r}; page status: {status!r}")


SETTLED = (
    "window.viewer && window.viewer.ready && window.viewer.pending === 0 && "
    "JSON.stringify(window.viewer.decodedCode) === JSON.stringify(window.viewer.code)"
)


def _canvas_pixels(driver) -> np.ndarray:
    from PIL import Image

    png = driver.find_element("id", "canvas").screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_slider_changes_the_mesh_and_matches_the_decoder(browser, viewer_url, trained_run_dir):
    from selenium.webdriver.common.keys import Keys

    browser.get(viewer_url)
    _wait(browser, SETTLED)
    before = _canvas_pixels(browser)
    assert before.std() > 1.0, "the canvas shows nothing (WebGL unavailable?)"
    slider = browser.find_element("id", "s0")
    slider.click()  # focus, then move it the way a user does: keyboard steps
    slider.send_keys(*([Keys.ARROW_RIGHT] * 60))
    _wait(browser, SETTLED)
    after = _canvas_pixels(browser)
    changed = np.abs(after - before).max(axis=2) > 8
    assert changed.mean() > 0.002, f"only {changed.mean():.4%} of the pixels changed"

    code = browser.execute_script("return window.viewer.code")
    positions = np.reshape(browser.execute_script("return window.viewer.positions()"), (-1, 3))
    sliders = browser.execute_script("return window.viewer.sliders")
    assert sliders[0] > 0.3  # the code moved along the first direction
    expected = torch_decode(load_run(trained_run_dir), np.array([code], np.float32))[0]
    assert positions.shape == expected.shape
    assert np.abs(positions - expected).max() <= 1e-4

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "viewer.png"))
    assert (ARTIFACTS / "viewer.png").stat().st_size > 1000


def test_reconstruction_heat_map_and_bad_id(browser, viewer_url):
    browser.get(viewer_url)
    _wait(browser, SETTLED)
    recon_id = browser.find_element("id", "recon-id")
    recon_id.clear()
    recon_id.send_keys("5")
    browser.find_element("id", "recon").click()
    _wait(browser, "window.viewer.heat === true")
    assert "mean error" in browser.find_element("id", "recon-text").text
    assert browser.find_element("id", "colorbar").is_displayed()
    recon_id.clear()
    recon_id.send_keys("999")
    browser.find_element("id", "recon").click()
    _wait(browser, "document.getElementById('status').textContent.includes('out of range')")
    browser.find_element("id", "reset").click()  # the server still answers
    _wait(browser, SETTLED + " && !window.viewer.heat")


def test_interpolation_play_ends_on_the_second_mesh(browser, viewer_url, trained_run_dir):
    from deep3dmm.analysis.latent import encode

    browser.get(viewer_url)
    _wait(browser, SETTLED)
    for name, value in (("interp-a", "2"), ("interp-b", "7")):
        box = browser.find_element("id", name)
        box.clear()
        box.send_keys(value)
    browser.find_element("id", "play").click()
    done = "document.getElementById('interp-t').value === '1' && "
    _wait(browser, done + "document.getElementById('play').textContent === 'Play'", timeout=120)
    _wait(browser, SETTLED)
    run = load_run(trained_run_dir)
    target = encode(run, np.array(run.open_dataset().vertices[[7]], np.float32))[0]
    code = np.array(browser.execute_script("return window.viewer.code"))
    assert np.abs(code - target).max() <= 1e-5  # t = 1: the code of mesh 7
