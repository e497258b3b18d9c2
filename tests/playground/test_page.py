"""End to end in a real headless Chromium (the system's, driven by Playwright): the page
trains XOR to test accuracy 0.95 and saves a deepfit run, trains an uploaded 3-class CSV,
and a copied URL reproduces the same loss after the same steps."""

from __future__ import annotations

import numpy as np
from playground_server import chromium, live, page  # noqa: F401 (fixtures)

import deepfit
from deepfit.cli import main

STEP = "document.body.dataset.step === '{}'"


def ready(page, url: str, hash_: str = "") -> None:
    page.goto(f"{url}/#{hash_}")
    page.wait_for_function(STEP.format(0), timeout=15_000)


def number(page, selector: str) -> float:
    return float(page.text_content(selector))


def test_xor_to_95_percent_then_save_and_load(live, page, tmp_path):
    url, out = live
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    ready(page, url, "hidden=&speed=20")
    page.select_option("#data", "xor")
    page.click("#add-layer")
    for _ in range(2):
        page.click("button.add-neuron")
    page.select_option("#optimizer", "adam")
    page.wait_for_function("document.querySelectorAll('canvas.neuron[data-layer=\"1\"]')"
                           ".length === 4")
    assert "hidden=4" in page.evaluate("location.hash")
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('test-metric').textContent) >= 0.95",
                           timeout=30_000)
    page.click("#play")  # pause
    assert number(page, "#test-metric") >= 0.95
    assert page.text_content("#metric-name") == "accuracy"
    assert page.locator("#confusion tr").count() == 3  # header + 2 classes
    page.fill("#export-name", "xor-from-page")
    page.click("#export")
    page.wait_for_function("document.getElementById('export-result').dataset.path",
                           timeout=60_000)
    run = deepfit.load(page.get_attribute("#export-result", "data-path"))
    assert run.path == (out / "xor-from-page").resolve() or run.path.name == "xor-from-page"
    assert run.task == "binary" and run.config.model.hidden == (4,)
    assert (run.path / "report.html").is_file() and (run.path / "model.safetensors").is_file()
    new = tmp_path / "new.csv"
    new.write_text("x1,x2\n0,0\n0,1\n")
    assert main(["predict", str(run.path), str(new), "-o", str(tmp_path / "p.csv")]) == 0
    assert main(["report", str(run.path)]) == 0
    assert requested and all(u.startswith((url, url.replace("http", "ws"), "data:"))
                             for u in requested), requested  # offline: no CDN, nothing else
    page.click("#python-button")
    page.wait_for_selector("#python-dialog[open]")
    assert "deepfit.train(" in page.text_content("#python-deepfit")
    assert "nn.Linear(2, 4)" in page.text_content("#python-torch")


def three_classes(path):
    """A CSV of 120 points in three classes (red, green, blue), the path."""
    rng = np.random.default_rng(0)
    centres = {"red": (-1, 0), "green": (1, 0), "blue": (0, 1.5)}
    lines = ["x1,x2,colour"] + [f"{cx + 0.3 * a:.3f},{cy + 0.3 * b:.3f},{name}"
                                for name, (cx, cy) in centres.items()
                                for a, b in rng.normal(size=(40, 2))]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_three_class_upload_trains(live, page, tmp_path):
    url, _ = live
    path = three_classes(tmp_path / "three.csv")
    ready(page, url, "hidden=6&opt=adam&speed=10&stop=15")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("document.querySelectorAll('#confusion tr').length === 4")
    assert "3 classes" in page.text_content("#upload-info")
    page.click("#play")
    page.wait_for_function("!document.getElementById('play').classList.contains('playing')"
                           " && Number(document.body.dataset.step) > 0", timeout=30_000)
    assert number(page, "#test-metric") >= 0.9
    bad = tmp_path / "one.csv"
    bad.write_text("a,b,c\n1,2,x\n2,3,x\n3,4,x\n4,5,x\n")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("document.getElementById('message').textContent.includes('one "
                           "class')")


def test_a_copied_url_reproduces_the_loss(live, chromium):
    url, _ = live
    state = "data=moons&points=100&test=0.3&seed=7&hidden=5,3&act=relu&lr=0.05&batch=10&stop=3"
    losses = []
    for hash_ in (state, state, state.replace("seed=7", "seed=8")):
        context = chromium.new_context()
        page = context.new_page()
        ready(page, url, hash_)
        page.click("#play")  # stops at epoch 3: 70 training points, batches of 10
        page.wait_for_function(STEP.format(21), timeout=30_000)
        losses.append(page.get_attribute("#train-loss", "data-value"))
        assert page.evaluate("location.hash").startswith("#data=moons")
        context.close()
    assert losses[0] == losses[1] != losses[2]


def test_clicks_add_and_remove_points(live, page):
    url, _ = live
    ready(page, url, "data=gaussians&points=40&hidden=2")
    page.wait_for_function("document.body.dataset.points === '40'")
    # A refused save leaves no "saving..." behind; the next action clears its line.
    page.click("#export")
    page.wait_for_function("document.getElementById('message').textContent.includes("
                           "'whole epoch')")
    assert page.text_content("#export-result") == ""
    page.keyboard.press("1")  # class 1
    assert "chosen" in page.get_attribute("#class-buttons button:nth-child(2)", "class")
    page.click("#map", position={"x": 200, "y": 200})
    page.wait_for_function("document.body.dataset.points === '41'")
    page.click("#map", position={"x": 200, "y": 200}, modifiers=["Shift"])
    page.wait_for_function("document.body.dataset.points === '40'")
    page.click("#step")
    page.wait_for_function(STEP.format(1))
    assert page.text_content("#message") == ""
    # A change of pace keeps the network, and the diagram keeps its tiles (no frame comes).
    page.fill("#speed", "7")
    page.press("#speed", "Enter")
    page.wait_for_function("location.hash.includes('speed=7')")
    assert page.evaluate("[...document.querySelectorAll('canvas.neuron')].map(c => c.width)"
                         ) == [50] * 4 + [100]  # 2 inputs, 2 neurons: maps; the output tile
    assert page.text_content("#step-count") == "1"
    page.click("#class-buttons button:nth-child(1)")  # a class chosen by its button
    assert "chosen" in page.get_attribute("#class-buttons button:nth-child(1)", "class")
    page.click("#reset")  # the seed's weights again, step 0
    page.wait_for_function(STEP.format(0))


def test_controls_come_from_the_server(live, page):
    """The page repeats none of the server's features, ranges, limits, noise or defaults."""
    from deepfit.playground.settings import FEATURES, MAX_LAYERS, RANGES, Settings

    url, _ = live
    ready(page, url)
    assert page.evaluate("[...document.querySelectorAll('#features input')].map(i => "
                         "i.dataset.feature)") == list(FEATURES)
    assert page.get_attribute("#points", "max") == str(RANGES["points"][1])
    assert page.input_value("#lr") == str(Settings().lr)
    assert page.evaluate("document.querySelectorAll('canvas.neuron[data-layer=\"1\"]').length"
                         ) == Settings().hidden[0]
    for _ in range(MAX_LAYERS + 2):
        page.click("#add-layer")
    assert page.text_content("#layer-count") == f"{MAX_LAYERS} hidden layer(s)"
    page.select_option("#data", "spiral")
    page.wait_for_function("location.hash.includes('data=spiral')")
    assert page.input_value("#noise") == "0.04"  # the generator's usual noise (toy2d.TOY)


def test_a_copied_link_carries_uploaded_points(live, chromium, tmp_path):
    """An uploaded CSV travels in the link: another tab, which uploaded nothing, trains on
    the same points and split to the same loss."""
    url, _ = live
    losses, hashes = [], []
    for _ in range(2):
        context = chromium.new_context()
        page = context.new_page()
        ready(page, url, hashes[0] if hashes else "hidden=3&stop=2&speed=3")
        if not hashes:
            page.set_input_files("#upload", str(three_classes(tmp_path / "three.csv")))
            page.wait_for_function("location.hash.includes('pts=')")
            hashes.append(page.evaluate("location.hash.slice(1)"))
            assert "data=upload" in hashes[0]
        page.wait_for_function("document.body.dataset.points === '120'")
        assert page.locator("#confusion tr").count() == 4  # header + 3 classes
        page.click("#play")  # 84 training points, batches of 10: 9 steps an epoch
        page.wait_for_function(STEP.format(18), timeout=30_000)
        losses.append(page.get_attribute("#train-loss", "data-value"))
        assert page.text_content("#class-buttons") == "class blueclass greenclass red"
        context.close()
    assert losses[0] == losses[1]


def test_a_copied_link_carries_clicked_points(live, chromium):
    url, _ = live
    losses, hashes = [], []
    for i in range(2):
        context = chromium.new_context(accept_downloads=True)
        page = context.new_page()
        ready(page, url, hashes[0] if hashes else "data=gaussians&points=40&hidden=2&stop=2")
        if not hashes:  # the first tab clicks a point: the link then carries the points
            page.wait_for_function("document.body.dataset.points === '40'")
            assert "pts=" not in page.evaluate("location.hash")  # the seed makes them
            page.click("#map", position={"x": 120, "y": 90})
            page.wait_for_function("location.hash.includes('pts=')")
            hashes.append(page.evaluate("location.hash.slice(1)"))
        page.wait_for_function("document.body.dataset.points === '41'")
        page.click("#play")  # 29 training points, batches of 10: 3 steps an epoch
        page.wait_for_function(STEP.format(6), timeout=30_000)
        losses.append(page.get_attribute("#train-loss", "data-value"))
        assert page.is_hidden("#link-note")
        context.close()
    assert losses[0] == losses[1]


def test_points_too_many_for_the_link_are_offered_as_csv(live, chromium, tmp_path):
    url, _ = live
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    ready(page, url, "data=spiral&points=2000&hidden=2")
    page.click("#map", position={"x": 120, "y": 90})
    page.wait_for_function("document.body.dataset.points === '2001'")
    assert page.is_visible("#link-note")
    assert "does not carry these 2,001 points" in page.text_content("#link-note")
    assert "pts=" not in page.evaluate("location.hash")
    with page.expect_download() as download:
        page.click("#download-points")
    saved = tmp_path / "points.csv"
    download.value.save_as(saved)
    assert saved.read_text().startswith("x1,x2,label\n") and len(
        saved.read_text().splitlines()) == 2002
    context.close()
