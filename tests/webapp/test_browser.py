"""The web page in a real browser: ``scripts/app.py`` serves a tiny trained demo model on a free loopback port and
headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by selenium) uses it like a visitor.

1. Upload a demo source image with its keypoint file, pick a test pose from the gallery, press Run: the image the
   page shows is the pipeline's output for the same inputs (max difference <= 1/255), and a screenshot of the page
   is saved as a test artifact (``test-artifacts/app_browser.png``, or ``$INTRINSIC_FLOW_ARTIFACTS``).
2. Upload a file that is not an image: the page shows the error; a following valid request still works.

Without gradio, selenium, chromium or chromedriver the tests skip, saying what is missing, unless
``INTRINSIC_FLOW_REQUIRE_BROWSER=1`` (set by CI in .ci/run), which makes them fail instead.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.pipeline import PoseTransferPipeline
from util.keypoints import write_openpose_json
from util.labels import load_label_file

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = 'INTRINSIC_FLOW_REQUIRE_BROWSER'
ARTIFACTS = Path(os.environ.get('INTRINSIC_FLOW_ARTIFACTS', REPO / 'test-artifacts'))
SERVER_START_SECONDS = 240
REQUEST_SECONDS = 240
POSE_INDEX = 2  # the gallery pose the tests pick

pytestmark = pytest.mark.slow


def _browser_binaries() -> tuple[str | None, str | None]:
    browser = next((shutil.which(n) for n in ('chromium', 'chromium-browser') if shutil.which(n)), None)
    return browser, shutil.which('chromedriver')


def _missing() -> list[str]:
    missing = [f'the Python package {name} (pip install -r requirements-app.txt)'
               for name in ('gradio', 'selenium') if importlib.util.find_spec(name) is None]
    browser, driver = _browser_binaries()
    if browser is None:
        missing.append('the chromium browser (apt-get install chromium)')
    if driver is None:
        missing.append('chromedriver (apt-get install chromium-driver)')
    return missing


@pytest.fixture(scope='module', autouse=True)
def _browser_tools():
    missing = _missing()
    if missing:
        reason = 'browser tests need ' + ', '.join(missing)
        if os.environ.get(REQUIRE_ENV) == '1':
            pytest.fail(f'{REQUIRE_ENV}=1 (CI) but {reason}', pytrace=False)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(web_model, tmp_path_factory):
    """``scripts/app.py`` on a free loopback port over the tiny model's checkpoints folder; its URL."""
    port = _free_port()
    logs = tmp_path_factory.mktemp('app_server')
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'GRADIO_TEMP_DIR': str(logs / 'gradio'), 'PYTHONUNBUFFERED': '1'}
    log_file = (logs / 'server.log').open('w')
    proc = subprocess.Popen([sys.executable, str(REPO / 'scripts' / 'app.py'), '--checkpoints_dir',
                             str(web_model.parent), '--model', web_model.name, '--port', str(port), '--device', 'cpu'],
                            cwd=str(logs), env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + SERVER_START_SECONDS
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f'the app exited with code {proc.returncode}:\n{(logs / "server.log").read_text()}')
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f'the app did not answer within {SERVER_START_SECONDS} s:\n'
                            f'{(logs / "server.log").read_text()}')
            time.sleep(1)
        yield {'url': url, 'proc': proc, 'log': logs / 'server.log'}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser_binaries()
    options = Options()
    options.binary_location = binary
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1280,1500', '--no-first-run', '--disable-extensions'):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope='module')
def demo_inputs(demo_root, tmp_path_factory):
    """A demo test image as the uploaded source (a copy outside the dataset), its keypoints as OpenPose JSON,
    and the keypoints of the gallery pose the tests pick (read from the dataset files, not through the app)."""
    split = json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['test']
    labels = load_label_file(demo_root / 'Label' / 'pose_label.pkl')
    ids = list(dict.fromkeys(img_id for pair in split for img_id in pair))
    folder = tmp_path_factory.mktemp('uploads')
    source_id = ids[0]
    source = folder / 'my_photo.jpg'
    shutil.copyfile(demo_root / 'Img' / 'img' / f'{source_id}.jpg', source)
    source_pose = write_openpose_json(folder / 'my_photo_keypoints.json', np.asarray(labels[source_id], np.float32))
    not_image = folder / 'holiday.png'
    not_image.write_text('this is a text file, not a picture\n')
    return {'source': source, 'source_pose': source_pose, 'target': np.asarray(labels[ids[POSE_INDEX]], np.float32),
            'not_image': not_image}


# ---------------------------------------------------------------------------------------------------- driving
def _wait(driver, condition, what: str, timeout: float = REQUEST_SECONDS):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except Exception as e:  # TimeoutException: say what the page showed
        status = _text(driver, 'status')
        raise AssertionError(f'timed out after {timeout} s waiting for {what}; status: {status!r}') from e


def _find(driver, css: str):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, css)


def _text(driver, elem_id: str) -> str:
    found = _find(driver, f'#{elem_id}')
    return found[0].text.strip() if found else ''


def _upload(driver, elem_id: str, path: Path) -> None:
    """Put ``path`` into the file widget ``elem_id`` (clearing a file it holds) and wait until it shows it."""
    clear = _find(driver, f'#{elem_id} button[aria-label="Clear"]')
    if clear:
        clear[0].click()
    inputs = _wait(driver, lambda d: _find(d, f'#{elem_id} input[type="file"]'), f'the file input of #{elem_id}', 30)
    inputs[0].send_keys(str(path))
    _wait(driver, lambda d: _find(d, f'#{elem_id} td.filename[aria-label="{path.name}"]'), f'{path.name} in #{elem_id}',
          60)


def _image_src(driver, elem_id: str) -> str | None:
    images = _find(driver, f'#{elem_id} img')
    return images[0].get_attribute('src') if images else None


def _open_page(driver, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: len(_find(d, '#pose-gallery button.thumbnail-item')) > POSE_INDEX,
          'the test-pose gallery', 120)


def _pick_pose(driver) -> None:
    before = _image_src(driver, 'pose-preview')
    _find(driver, '#pose-gallery button.thumbnail-item')[POSE_INDEX].click()
    _wait(driver, lambda d: _image_src(d, 'pose-preview') not in (None, before), 'the target pose preview', 60)


def _run(driver) -> str:
    """Press Run; the status text once the request finished (a result or an error)."""
    before = _image_src(driver, 'result')
    _find(driver, '#run')[0].click()
    _wait(driver, lambda d: 'Error' in _text(d, 'status')
          or (_text(d, 'status').startswith('Done in') and _image_src(d, 'result') not in (None, before)),
          'the result', REQUEST_SECONDS)
    return _text(driver, 'status')


def _fetch_image(src: str) -> np.ndarray:
    assert src.startswith('http://127.0.0.1:'), src  # served by the app itself
    with urllib.request.urlopen(src, timeout=30) as response:
        data = response.read()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == 'PNG'
        return np.asarray(im.convert('RGB'))


# ---------------------------------------------------------------------------------------------------- tests
def test_upload_pick_pose_run_gives_the_pipeline_output(server, browser, demo_inputs, web_model):
    _open_page(browser, server['url'])
    assert _find(browser, '#model input')[0].get_attribute('value') == 'PoseTransfer_web (demo, 128x64)'
    _upload(browser, 'source-pose-file', demo_inputs['source_pose'])
    _upload(browser, 'source-file', demo_inputs['source'])
    _wait(browser, lambda d: _image_src(d, 'source-preview'), 'the source preview', 60)
    _pick_pose(browser)
    status = _run(browser)
    assert status.startswith('Done in') and 'PoseTransfer_web (best)' in status and 'framing: auto' in status, status
    shown = _fetch_image(_image_src(browser, 'result'))

    pipe = PoseTransferPipeline.from_pretrained(web_model, device='cpu')
    expected = pipe(demo_inputs['source'], demo_inputs['target'], source_keypoints=demo_inputs['source_pose']).image
    assert shown.shape == expected.shape == (128, 64, 3)
    diff = np.abs(shown.astype(np.int16) - expected.astype(np.int16)).max()
    assert diff <= 1, f'the page shows an image {diff}/255 away from the pipeline output'
    # The download button is offered; the intermediate panels are labelled.
    download = _find(browser, '#download')
    assert download and download[0].is_displayed() and 'Download the result' in download[0].text
    # The page was served on the loopback address and loaded nothing from any other host.
    assert 'Running on local URL:  http://127.0.0.1:' in server['log'].read_text()
    hosts = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert {h.split('/')[2] for h in hosts if '://' in h} == {server['url'].split('/')[2]}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / 'app_browser.png'))
    assert (ARTIFACTS / 'app_browser.png').stat().st_size > 10_000
    tabs = [b for b in _find(browser, 'button[role="tab"]') if b.text.strip() == 'How it was made']
    tabs[0].click()
    labels = _wait(browser, lambda d: [c.text for c in _find(d, '#panels .caption-label')], 'the labelled panels', 60)
    for label in ('target pose', 'flow', 'visibility', 'warped source', 'pixel-warping mask', 'result'):
        assert any(text.startswith(label) for text in labels), (label, labels)


def test_non_image_upload_shows_the_error_and_the_page_keeps_working(server, browser, demo_inputs):
    _open_page(browser, server['url'])
    _upload(browser, 'source-file', demo_inputs['not_image'])
    _wait(browser, lambda d: 'is not an image' in _text(d, 'status'), 'the error message', 60)
    status = _text(browser, 'status')
    assert status.startswith('Error: holiday.png is not an image'), status
    assert 'Traceback' not in browser.page_source and server['proc'].poll() is None
    # The next, valid request works.
    _upload(browser, 'source-pose-file', demo_inputs['source_pose'])
    _upload(browser, 'source-file', demo_inputs['source'])
    _wait(browser, lambda d: _image_src(d, 'source-preview'), 'the source preview', 60)
    _pick_pose(browser)
    status = _run(browser)
    assert status.startswith('Done in'), status
    assert _fetch_image(_image_src(browser, 'result')).shape == (128, 64, 3)
