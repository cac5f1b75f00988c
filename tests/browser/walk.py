"""The dashboard walked in a real browser as a new user would: admin creates a workspace, sign
in, a collection, upload (file input and drag-and-drop, one file refused), a document's
sentences, augment, review one by one and in bulk, train, the playground, an eval set, an
evaluation and its report, an eval set uploaded (a broken one refused), the adapter imported
under another name and deleted, and a long training cancelled. Every step asserts on what the
page shows. Shared by the test and by `python -m tests.browser.walk URL ADMIN_KEY` against a
running service (screenshots)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.browser.browser import (
    console_errors,
    screenshot,
    start_browser,
    wait,
    wait_for,
    wait_text,
)

# Three sentences, and a second document linked to the first (linked/qa get something to do).
HANDBOOK = (
    "Priya Nandakumar leads the Platform team.\n\n"
    "Harbor is an internal tool for deploying services.\n\n"
    "All internal tools are maintained by the Platform team.\n"
)
OFFICES = "The Lisbon office is led by *Marta Silva*.\n"
NOT_A_PDF = b"%PDF-1.4\nthis is not really a pdf\n"
EVALSET = [
    {"question": "Who leads the Platform team?", "answer": "Priya Nandakumar"},
    {
        "question": "What is Harbor?",
        "answer": "a tool for deploying services",
        "choices": ["a tool for deploying services", "an office in Lisbon"],
    },
]
# The smallest training the API allows that still trains: a few steps on short rows.
TINY_TRAINING = {
    "max_steps": "3",
    "batch_size": "2",
    "max_seq_length": "48",
    "rank": "4",
    "eval_every": "0",  # the held-out loss and the check at the start and the end only
}


def fill(driver: WebDriver, css: str, value: str) -> None:
    el = wait_for(driver, css)
    el.clear()
    el.send_keys(value)


def click_button(driver: WebDriver, text: str, scope_css: str = "main") -> None:
    xpath = f".//button[normalize-space()={text!r}]"
    scope = wait_for(driver, scope_css)
    button = wait(driver).until(
        lambda d: next((b for b in scope.find_elements(By.XPATH, xpath) if b.is_enabled()), False),
        f"no enabled button {text!r}",
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def go(driver: WebDriver, base: str, hash_path: str) -> None:
    """To a page of the app, as its links do (a hash change, no page load)."""
    if driver.current_url.startswith(base):
        driver.execute_script("location.hash = arguments[0]", hash_path)
    else:
        driver.get(f"{base}/#{hash_path}")
    wait(driver).until(
        lambda d: d.execute_script("return location.hash") == f"#{hash_path}", "the hash"
    )
    wait_for(driver, "#page-title")


def drop_file(driver: WebDriver, css: str, name: str, text: str, media_type: str) -> None:
    """A file dropped on the element: the drop event a browser fires, with a DataTransfer."""
    driver.execute_script(
        """
        const [sel, name, text, type] = arguments;
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, {type}));
        const zone = document.querySelector(sel);
        for (const kind of ["dragover", "drop"]) {
          const init = {dataTransfer: dt, bubbles: true, cancelable: true};
          zone.dispatchEvent(new DragEvent(kind, init));
        }
        """,
        css,
        name,
        text,
        media_type,
    )


def walk(driver: WebDriver, base: str, admin_key: str, files: Path, shots: Path | None) -> dict:
    """The whole flow; returns what it saw (ids, timings) for the caller's report."""
    seen: dict = {"timings": {}}
    started = time.monotonic()

    def lap(name: str) -> None:
        seen["timings"][name] = round(time.monotonic() - started, 1)

    files.mkdir(parents=True, exist_ok=True)
    (files / "handbook.txt").write_text(HANDBOOK)
    (files / "broken.pdf").write_bytes(NOT_A_PDF)

    # Not signed in: the home page is the sign-in form, and a wrong key is refused.
    driver.get(f"{base}/")
    wait_text(driver, "#page-title", "Sign in")
    fill(driver, "input[name=api_key]", "not-a-key" + Keys.ENTER)  # the keyboard submits
    wait_for(driver, "main p.error", what="the refusal of a wrong key")
    screenshot(driver, shots, "01-sign-in")

    # Admin: a workspace and its key, shown once; sign in with it.
    go(driver, base, "/admin")
    inputs = driver.find_elements(By.CSS_SELECTOR, "main form input")
    inputs[0].send_keys(admin_key)
    inputs[1].send_keys("browser-walk")
    click_button(driver, "Create workspace")
    key = wait_for(driver, "#new-api-key").text
    assert key.startswith("da"), key
    screenshot(driver, shots, "02-admin")
    click_button(driver, "Sign in with this key")
    wait_text(driver, "#page-title", "Collections")
    assert driver.execute_script("return sessionStorage.getItem('docadapt.key')") == key
    assert key not in driver.current_url
    lap("signed in")

    # A collection.
    form = wait_for(driver, "main form")
    form.find_element(By.CSS_SELECTOR, "input[type=text]").send_keys("Handbook")
    click_button(driver, "Create collection")
    wait_text(driver, "#page-title", "Collection: Handbook")
    collection_id = driver.current_url.rsplit("/", 1)[-1]
    seen["collection_id"] = collection_id

    # Upload two files through the input (one is refused, with the API's reason), one by drop.
    upload = wait_for(driver, "#upload-files")
    upload.send_keys(f"{files / 'handbook.txt'}\n{files / 'broken.pdf'}")
    ok = wait_for(driver, "#upload-results li.ok", what="handbook.txt stored")
    assert "handbook.txt: stored" in ok.text and "3 sentences" in ok.text, ok.text
    bad = wait_for(driver, "#upload-results li.error", what="broken.pdf refused")
    assert bad.text.startswith("broken.pdf: refused"), bad.text
    assert re.search(r"\(4\d\d \w+\)", bad.text), bad.text
    drop_file(driver, "#dropzone", "offices.md", OFFICES, "text/markdown")
    wait_for(
        driver,
        "#upload-results li.ok",
        lambda el: el.text.startswith("offices.md: stored"),
        what="offices.md stored by drag-and-drop",
    )
    rows = wait_for(
        driver, "#documents-table tbody", lambda el: len(el.find_elements(By.TAG_NAME, "tr")) == 2
    )
    assert "handbook.txt" in rows.text and "offices.md" in rows.text
    wait_text(driver, "#collection-summary", "2 documents · 4 sentences")
    screenshot(driver, shots, "03-collection")
    lap("uploaded")

    # A document's passages and sentences, then its full text.
    driver.find_element(By.LINK_TEXT, "handbook.txt").click()
    wait_text(driver, "#page-title", "Document: handbook.txt")
    sentences = wait_for(driver, "#document-passages").find_elements(
        By.CSS_SELECTOR, ".sentences li"
    )
    assert [s.text for s in sentences] == [
        "Priya Nandakumar leads the Platform team.",
        "Harbor is an internal tool for deploying services.",
        "All internal tools are maintained by the Platform team.",
    ]
    screenshot(driver, shots, "04-document")
    click_button(driver, "Full text")
    assert "Harbor is an internal tool" in wait_for(driver, "#document-text").text

    # Augment with the default strategies; progress streams until it succeeds.
    go(driver, base, f"/collections/{collection_id}")
    form = wait_for(driver, "#augment-form")
    checked = [
        b.get_attribute("value")
        for b in form.find_elements(By.CSS_SELECTOR, "input[name=strategy]:checked")
    ]
    assert checked == ["decomposed", "linked", "qa"], checked
    assert "decomposed (each sentence" in form.text  # the API's help text
    click_button(driver, "Start augmentation", "#augment-form")
    wait_text(driver, "#page-title", "Augmentation aug_")
    seen["augmentation_id"] = driver.current_url.rsplit("/", 1)[-1]
    wait_for(driver, ".job-progress[data-status=succeeded]", timeout=300, what="augmentation done")
    assert "succeeded" in driver.find_element(By.CSS_SELECTOR, ".job-progress").text
    yield_rows = wait_for(driver, "#yield-table tbody").find_elements(By.TAG_NAME, "tr")
    assert {r.find_element(By.TAG_NAME, "th").text for r in yield_rows} >= {"decomposed", "qa"}
    lap("augmented")

    # Examples with source sentence, strategy, score; review one by one and in bulk.
    table = wait_for(
        driver, "#examples-table tbody", lambda el: el.find_elements(By.TAG_NAME, "tr")
    )
    counts = wait_for(driver, "#review-counts").text
    total = int(re.match(r"(\d+) examples", counts).group(1))
    assert total >= 3 and f"{total} pending" in counts.replace("examples: ", ""), counts
    first = table.find_elements(By.TAG_NAME, "tr")[0]
    assert first.find_element(By.CSS_SELECTOR, "td.source").text in HANDBOOK + OFFICES
    example_id = first.get_attribute("data-example-id")
    first.find_element(By.CSS_SELECTOR, f"button[aria-label='Reject example {example_id}']").click()
    wait_for(driver, f"tr[data-example-id='{example_id}'][data-review=rejected]")
    wait_text(driver, "#review-counts", f"{total - 1} pending, 0 approved, 1 rejected")
    screenshot(driver, shots, "05-augmentation")
    picks = driver.find_elements(By.CSS_SELECTOR, "#examples-table input[name=pick]")
    for box in picks[1:3]:
        box.click()
    click_button(driver, "Approve selected")
    wait_text(driver, "#review-counts", f"{total - 3} pending, 2 approved, 1 rejected")
    Select(driver.find_element(By.CSS_SELECTOR, "select[name=review]")).select_by_value("pending")
    wait_text(driver, "#review-counts", f"{total - 3} match the filter")
    click_button(driver, "Approve all matching")
    wait_text(driver, "#review-counts", f"0 pending, {total - 1} approved, 1 rejected")
    seen["examples"] = total
    lap("reviewed")

    # Train on the approved examples; the loss curve fills in, then the knowledge check.
    go(driver, base, f"/collections/{collection_id}")
    form = wait_for(driver, "#train-form")
    form.find_element(By.CSS_SELECTOR, "input[name=adapter_name]").send_keys("handbook-aug")
    Select(form.find_element(By.CSS_SELECTOR, "select[name=augmentation_id]")).select_by_value(
        seen["augmentation_id"]
    )
    Select(form.find_element(By.CSS_SELECTOR, "select[name=examples]")).select_by_value("approved")
    form.find_element(By.TAG_NAME, "summary").click()
    for name, value in TINY_TRAINING.items():
        form.find_element(By.CSS_SELECTOR, f"input[name={name}]").send_keys(value)
    click_button(driver, "Train adapter", "#train-form")
    wait_text(driver, "#page-title", "Adapter: handbook-aug")
    seen["adapter_id"] = driver.current_url.rsplit("/", 1)[-1]
    wait_for(
        driver,
        "#loss-chart .legend li",
        lambda el: "training loss" in el.text,
        timeout=300,
        what="a point on the loss curve",
    )
    wait_for(driver, "#adapter-head .status-ready", timeout=300, what="the adapter ready")
    knowledge = wait_for(driver, "#knowledge-summary", timeout=120).text
    assert knowledge.startswith("knows "), knowledge
    legend = driver.find_element(By.CSS_SELECTOR, "#loss-chart .legend").text
    assert re.search(r"training loss: [1-3] points", legend), legend
    assert driver.find_elements(By.CSS_SELECTOR, "#loss-chart path.series")
    lineage = driver.find_element(By.CSS_SELECTOR, "#lineage").text
    assert seen["augmentation_id"] in lineage and "approved" in lineage, lineage
    screenshot(driver, shots, "06-adapter")
    lap("trained")

    # Download: the archive arrives as a blob (the key stays in the header).
    click_button(driver, "Download")
    wait_text(driver, "#flash", "Downloading handbook-aug.tar.gz")

    # The playground: the adapter, icl:, rag and base side by side.
    go(driver, base, "/playground")
    Select(wait_for(driver, "select[name=adapter]")).select_by_value("handbook-aug")
    fill(driver, "textarea[name=question]", "Who leads the Platform team?")
    click_button(driver, "Ask")
    cards = wait(driver, 240).until(
        lambda d: (
            (c := d.find_elements(By.CSS_SELECTOR, "#answers article[data-done=true]"))
            and len(c) == 4
            and c
        ),
        "four answers",
    )
    modes = [c.get_attribute("data-mode") for c in cards]
    assert modes == ["handbook-aug", f"icl:{collection_id}", "rag", "base"], modes
    for card in cards:
        tokens = card.find_element(By.CSS_SELECTOR, "dd[data-k='Prompt tokens']").text
        assert tokens.isdigit() and int(tokens) > 0, (card.text, tokens)
        assert card.find_element(By.CSS_SELECTOR, "dd[data-k=Cost]").text.startswith("$")
        assert re.match(
            r"\d+\.\d\d s", card.find_element(By.CSS_SELECTOR, "dd[data-k=Latency]").text
        )
        assert not card.find_elements(By.CSS_SELECTOR, ".error"), card.text
    icl_tokens = int(cards[1].find_element(By.CSS_SELECTOR, "dd[data-k='Prompt tokens']").text)
    base_tokens = int(cards[3].find_element(By.CSS_SELECTOR, "dd[data-k='Prompt tokens']").text)
    assert icl_tokens > base_tokens  # the documents are in icl's prompt
    screenshot(driver, shots, "07-playground")
    lap("playground")

    # Evaluate: generate an eval set, then base, icl and the adapter on it.
    go(driver, base, f"/collections/{collection_id}")
    form = wait_for(driver, "#generate-evalset-form")
    fill(driver, "#generate-evalset-form input[name=max_items]", "4")
    click_button(driver, "Generate", "#generate-evalset-form")
    evalsets = wait_for(
        driver,
        "#evalsets-table tbody",
        lambda el: "ready" in el.text,
        timeout=180,
        what="the generated eval set",
    )
    assert "generated" in evalsets.text
    form = wait_for(driver, "#evaluation-form")
    modes = {
        b.get_attribute("value"): b for b in form.find_elements(By.CSS_SELECTOR, "input[name=mode]")
    }
    assert (
        modes["base"].is_selected()
        and modes["icl"].is_selected()
        and modes["adapter"].is_selected()
    )
    latency = form.find_element(By.CSS_SELECTOR, "input[name=measure_latency]")
    latency.click()  # off: the walk needs the report, not latency samples
    screenshot(driver, shots, "08-evaluations")
    click_button(driver, "Start evaluation", "#evaluation-form")
    wait_text(driver, "#page-title", "Evaluation ev")
    wait_for(driver, "#recommendation-table tbody", timeout=400, what="the report")
    rec = driver.find_element(By.CSS_SELECTOR, "#recommendation-table tbody").text
    for mode in ("base", "icl", "handbook-aug"):
        assert mode in rec, rec
    results = driver.find_element(By.CSS_SELECTOR, "#results-table").text
    assert "handbook-aug" in results and ("right" in results or "wrong" in results), results
    # The results filtered to one mode (fetched again from the API with ?mode=), all on one page.
    Select(driver.find_element(By.CSS_SELECTOR, "select[name=results_mode]")).select_by_value(
        "base"
    )

    def only_base(table):
        modes = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody td:first-child")]
        return modes and set(modes) == {"base"} and re.search(r"(\d+) of \1 results", table.text)

    wait_for(driver, "#results-table", only_base, what="only base's results")
    assert not driver.find_element(By.ID, "more-results").is_displayed()
    wait(driver).until(
        lambda d: d.execute_script(
            "const i = document.querySelector('#cost-curve'); return i && i.naturalWidth > 0"
        ),
        "the cost curve image",
    )
    frame = driver.find_element(By.CSS_SELECTOR, "#report-frame")
    driver.switch_to.frame(frame)
    assert "Break-even" in wait_for(driver, "body").text
    driver.switch_to.default_content()
    screenshot(driver, shots, "09-report")
    lap("evaluated")

    upload_evalsets(driver, base, files, collection_id)
    import_and_delete(driver, base, files, key, seen["adapter_id"])
    lap("imported and deleted")
    cancel_training(driver, base, collection_id, seen["augmentation_id"])
    lap("cancelled")

    # Adapters list; sign out forgets the key.
    go(driver, base, "/adapters")
    assert "handbook-aug" in wait_for(driver, "#adapters-table").text
    screenshot(driver, shots, "10-adapters")
    click_button(driver, "Sign out", "#session")
    wait_text(driver, "#page-title", "Sign in")
    assert driver.execute_script("return sessionStorage.getItem('docadapt.key')") is None

    errors = [e for e in console_errors(driver) if "Failed to load resource" not in e]
    assert not errors, errors
    return seen


def upload_evalsets(driver: WebDriver, base: str, files: Path, collection_id: str) -> None:
    """An eval set uploaded as JSONL: a broken file is refused with the line the API names and
    nothing is stored; a good one is stored and listed."""
    (files / "broken-evalset.jsonl").write_text(
        json.dumps(EVALSET[0]) + "\n" + '{"question": "Who leads the Platform team?"}\n'
    )
    (files / "handbook-evalset.jsonl").write_text("".join(json.dumps(i) + "\n" for i in EVALSET))
    go(driver, base, f"/collections/{collection_id}")
    form = wait_for(driver, "#upload-evalset-form")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(
        str(files / "broken-evalset.jsonl")
    )
    click_button(driver, "Upload", "#upload-evalset-form")
    error = wait_for(driver, "#upload-evalset-form p.error", what="the broken eval set refused")
    assert "line 2: missing field 'answer'" in error.text, error.text
    assert re.search(r"\(4\d\d \w+\)", error.text), error.text
    assert "broken-evalset" not in driver.find_element(By.CSS_SELECTOR, "#evalsets-table").text
    form = driver.find_element(By.CSS_SELECTOR, "#upload-evalset-form")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(
        str(files / "handbook-evalset.jsonl")
    )
    click_button(driver, "Upload", "#upload-evalset-form")
    wait_text(driver, "#flash", f"Eval set handbook-evalset.jsonl stored: {len(EVALSET)} items.")
    wait_text(driver, "#evalsets-table", "handbook-evalset.jsonl")


def import_and_delete(driver: WebDriver, base: str, files: Path, key: str, adapter_id: str) -> None:
    """The trained adapter's archive (fetched over REST, as a user would have downloaded it)
    imported under a new name through the page, then deleted from its page."""
    response = httpx.get(
        f"{base}/v1/adapters/{adapter_id}/download",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    response.raise_for_status()
    archive = files / "handbook-aug.tar.gz"
    archive.write_bytes(response.content)
    go(driver, base, "/adapters")
    form = wait_for(driver, "#import-adapter-form")
    form.find_element(By.CSS_SELECTOR, "input[name=adapter_file]").send_keys(str(archive))
    form.find_element(By.CSS_SELECTOR, "input[name=adapter_name]").send_keys("handbook-copy")
    click_button(driver, "Import", "#import-adapter-form")
    wait_text(driver, "#page-title", "Adapter: handbook-copy", timeout=120)
    wait_for(driver, "#adapter-head .status-ready", timeout=120, what="the imported adapter ready")
    click_button(driver, "Delete")
    wait(driver).until(lambda d: d.switch_to.alert).accept()  # the confirm() dialog
    wait_text(driver, "#flash", "Adapter handbook-copy deleted.")
    wait_text(driver, "#page-title", "Adapters")
    table = wait_for(driver, "#adapters-table").text
    assert "handbook-aug" in table and "handbook-copy" not in table, table


def cancel_training(driver: WebDriver, base: str, collection_id: str, augmentation_id: str) -> None:
    """A long training started from the collection page and cancelled from its adapter page."""
    go(driver, base, f"/collections/{collection_id}")
    form = wait_for(driver, "#train-form")
    form.find_element(By.CSS_SELECTOR, "input[name=adapter_name]").send_keys("handbook-long")
    Select(form.find_element(By.CSS_SELECTOR, "select[name=augmentation_id]")).select_by_value(
        augmentation_id
    )
    form.find_element(By.TAG_NAME, "summary").click()
    for name, value in {**TINY_TRAINING, "max_steps": "2000"}.items():
        form.find_element(By.CSS_SELECTOR, f"input[name={name}]").send_keys(value)
    click_button(driver, "Train adapter", "#train-form")
    wait_text(driver, "#page-title", "Adapter: handbook-long")
    wait_for(driver, ".job-progress .cancel-job", timeout=60, what="the cancel button").click()
    wait_text(driver, "#flash", "Cancel requested")
    wait_for(driver, ".job-progress[data-status=cancelled]", timeout=300, what="the job cancelled")
    assert not driver.find_elements(By.CSS_SELECTOR, ".job-progress .cancel-job")


if __name__ == "__main__":  # python -m tests.browser.walk URL ADMIN_KEY [SHOTS_DIR]
    url, admin = sys.argv[1], sys.argv[2]
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    drv = start_browser()
    try:
        print(walk(drv, url.rstrip("/"), admin, Path("/tmp/walk-files"), out))
    except BaseException:
        drv.save_screenshot("/tmp/walk-failure.png")
        print(drv.find_element(By.TAG_NAME, "body").text[:3000])
        raise
    finally:
        drv.quit()
