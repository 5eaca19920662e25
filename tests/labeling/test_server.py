"""The labeling page's server: labels, undo, marks, resume, compare-and-set, bad requests,
the token, Ctrl-C, latency, and a Label Studio export made by a real Label Studio.

One tiny image project (3 colours, 16 px, small_cnn, 20 steps) is built once per process
with its first round (a selection of 12); every test works on its own copy.
"""
import atexit
import functools
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelnext.labeling.latency import measure
from labelnext.labeling.server import MAX_BODY, LabelServer, create_app
from labelnext.labeling.session import FLAGS_FILE, LabelingSession, RequestError, class_keys
from labelnext.loop.project import LabelingProject

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "fixtures"
COLOURS = {"blue": (30, 30, 200), "green": (30, 200, 30), "red": (200, 30, 30)}
BUDGET = 12


def make_image_folder(root, n_per_class=10, n_unlabeled=30, size=16, seed=0):
    """``root/<colour>/*.png`` (the seed labels) and ``root/unlabeled/*.png`` (the pool): noisy colour squares."""
    rng = np.random.default_rng(seed)
    colours = list(COLOURS.values())

    def square(rgb):
        return Image.fromarray(np.clip(np.array(rgb) + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8))

    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            square(rgb).save(root / name / f"{i}.png")
    (root / "unlabeled").mkdir(exist_ok=True)
    for i in range(n_unlabeled):
        square(colours[i % len(colours)]).save(root / "unlabeled" / f"u{i:02d}.png")
    return root


@functools.lru_cache(maxsize=1)
def template_project():
    """A project folder with one finished round; built once per process, removed at exit."""
    base = Path(tempfile.mkdtemp(prefix="al-labeling-test-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    data = make_image_folder(base / "colours")
    with LabelingProject.create(base / "template", data, arch="small_cnn", steps=20, image_size=16) as proj:
        proj.run_round(BUDGET, "margin")
    return base / "template"


def copy_project(tmp_path):
    dest = tmp_path / "proj"
    shutil.copytree(template_project(), dest)
    return dest


@pytest.fixture
def proj(tmp_path):
    with LabelingProject(copy_project(tmp_path)) as p:
        yield p


@pytest.fixture
def client(proj):
    return create_app(LabelingSession(proj, annotator="ann"), loopback_port=8765).test_client()


def _label(client, index, cls, expect_id=None, **extra):
    return client.post("/api/label", json={"index": index, "class": cls, "expect_id": expect_id, **extra})


# --------------------------------------------------------------------------- state, labels, resume
def test_state_lists_the_selection_in_rank_order(client, proj):
    c = client
    state = c.get("/api/state").get_json()
    sel = proj.selection()
    assert state["round"] == 0 and state["n_selected"] == BUDGET == len(sel)
    assert [it["index"] for it in state["items"]] == [r["index"] for r in sel]
    assert [it["rank"] for it in state["items"]] == list(range(BUDGET))
    assert all(it["label"] is None and it["flag"] is None for it in state["items"])
    assert state["classes"] == ["blue", "green", "red"]
    assert state["counts"] == {"blue": 8, "green": 8, "red": 8}  # the seed labels less the held-out 20%
    assert state["target"] == 12  # (24 labels + 12 to come) / 3 classes
    preview = c.get(f"/api/item/{sel[0]['index']}").get_json()
    assert preview == {"kind": "image", "url": f"image/{sel[0]['index']}"}
    img = c.get(f"/image/{sel[0]['index']}")
    assert img.status_code == 200 and img.mimetype == "image/png" and img.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_go_to_the_store_at_once_and_a_restart_resumes(client, proj):
    c = client
    sel = [r["index"] for r in proj.selection()]
    for k, cls in enumerate(["red", "green", 0]):
        r = _label(c, sel[k], cls, annotator="bob" if k == 1 else None)
        assert r.status_code == 200, r.get_json()
    rows = [proj.store.history(i)[-1] for i in sel[:3]]
    assert [(r["class_name"], r["source"], r["round"], r["annotator"]) for r in rows] == [
        ("red", "web", 0, "ann"), ("green", "web", 0, "bob"), ("blue", "web", 0, "ann")]
    assert r.get_json()["counts"] == {"blue": 9, "green": 9, "red": 9}
    # A new server on the same folder (a restart) sees the same work: 3 labeled, the 4th is next.
    with LabelingProject(proj.path) as again:
        state = LabelingSession(again).state()
    assert state["n_labeled"] == 3
    assert [it["label"] is not None for it in state["items"]] == [True] * 3 + [False] * (BUDGET - 3)
    assert state["items"][1]["label"]["annotator"] == "bob"


def test_undo_takes_back_only_the_named_label_of_its_own_labeler(client, proj):
    c = client
    sel = [r["index"] for r in proj.selection()]
    first = _label(c, sel[0], "red").get_json()["row"]  # the server's annotator 'ann'
    second = _label(c, sel[1], "blue").get_json()["row"]
    bobs = _label(c, sel[2], "green", annotator="bob").get_json()["row"]
    undone = c.post("/api/undo", json={"id": second["id"]}).get_json()
    assert undone["removed"]["item"] == sel[1] and undone["current"] is None
    assert undone["counts"] == {"blue": 8, "green": 9, "red": 9}
    # Another client, named or not, cannot take back ann's or bob's label.
    for body in ({"id": first["id"], "annotator": "mallory"}, {"id": bobs["id"]}):
        refused = c.post("/api/undo", json=body)
        assert refused.status_code == 403 and "only they can undo it" in refused.get_json()["error"]
    assert c.post("/api/undo", json={"id": second["id"]}).status_code == 404  # already undone
    assert c.post("/api/undo", json={}).status_code == 400  # an undo names its label
    # Relabeled since: the id the caller saw is no longer the item's label.
    newer = _label(c, sel[0], "blue", expect_id=first["id"], annotator="bob").get_json()["row"]
    changed = c.post("/api/undo", json={"id": first["id"]})
    assert changed.status_code == 409 and changed.get_json()["current"]["id"] == newer["id"]
    # An explicit override takes back someone else's current label.
    assert c.post("/api/undo", json={"id": newer["id"], "override": True}).status_code == 200
    assert proj.store.history(sel[0])[-1]["id"] == first["id"]
    assert proj.store.history(sel[2])[-1]["annotator"] == "bob"  # bob's label survived the others' undos


def test_skip_and_unsure_marks_survive_a_restart(client, proj):
    c = client
    sel = [r["index"] for r in proj.selection()]
    assert c.post("/api/flag", json={"index": sel[0], "flag": "skip"}).status_code == 200
    assert c.post("/api/flag", json={"index": sel[1], "flag": "unsure"}).status_code == 200
    assert c.post("/api/flag", json={"index": sel[1], "flag": None}).status_code == 200
    assert c.post("/api/flag", json={"index": sel[2], "flag": "unsure"}).status_code == 200
    with LabelingProject(proj.path) as again:
        items = LabelingSession(again).state()["items"]
    assert [it["flag"] for it in items[:4]] == ["skip", None, "unsure", None]
    assert proj.store.n_rows() == 24  # marks are not labels


# --------------------------------------------------------------------------- two labelers at once
def test_compare_and_set_refuses_a_stale_label_and_takes_a_knowing_one(client, proj):
    c = client
    item = proj.selection()[0]["index"]
    mine = _label(c, item, "red", annotator="alice")
    assert mine.status_code == 200
    stale = _label(c, item, "blue", annotator="bob")  # bob's page still showed the item unlabeled
    assert stale.status_code == 409
    body = stale.get_json()
    assert body["current"]["id"] == mine.get_json()["row"]["id"] and body["current"]["annotator"] == "alice"
    assert "labeled by someone else" in body["error"] and "\n" not in body["error"]
    assert [h["class_name"] for h in proj.store.history(item)] == ["red"]
    knowing = _label(c, item, "blue", expect_id=body["current"]["id"], annotator="bob")
    assert knowing.status_code == 200
    assert [h["class_name"] for h in proj.store.history(item)] == ["red", "blue"]


def test_concurrent_labels_of_one_item_over_http_write_exactly_one(tmp_path):
    with LabelServer(copy_project(tmp_path), port=0, threads=8).start() as server:
        item = server.session.selection()[1][0]["index"]
        barrier = threading.Barrier(8)
        statuses = []

        def post(cls):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            barrier.wait()
            conn.request("POST", "/api/label", json.dumps({"index": item, "class": cls, "expect_id": None}),
                         {"Content-Type": "application/json", "X-Token": server.token})
            statuses.append(conn.getresponse().status)
            conn.close()

        threads = [threading.Thread(target=post, args=(["blue", "green", "red"][k % 3],)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 7
        assert len(server.session.store.history(item)) == 1


# --------------------------------------------------------------------------- bad requests
BAD = [
    ("post", "/api/label", {"index": 10_000, "class": "red", "expect_id": None}, 404, "not an item of this project"),
    ("post", "/api/label", {"index": 0, "class": "red", "expect_id": None}, 404, "not in round 0's selection"),
    ("post", "/api/label", {"index": "../../etc/passwd", "class": "red", "expect_id": None}, 400, "dataset index"),
    ("post", "/api/label", {"index": True, "class": "red", "expect_id": None}, 400, "dataset index"),
    ("post", "/api/label", {"index": "SEL", "class": "purple", "expect_id": None}, 400, "'purple' is not a class"),
    ("post", "/api/label", {"index": "SEL", "class": 3, "expect_id": None}, 400, "3 is not a class"),
    ("post", "/api/label", {"index": "SEL", "class": "red", "expect_id": "x"}, 400, "expect_id must be"),
    ("post", "/api/label", {"index": "SEL", "class": "red"}, 400, "missing fields"),
    ("post", "/api/label", {"index": "SEL", "class": "red", "expect_id": None, "annotator": "x" * 65}, 400,
     "annotator must be"),
    ("post", "/api/label", [1, 2], 400, "must be a JSON object"),
    ("post", "/api/flag", {"index": "SEL", "flag": "maybe"}, 400, "flag must be one of"),
    ("post", "/api/round", {"budget": 0}, 400, "budget must be a positive integer"),
    ("get", "/image/..%2F..%2Fetc%2Fpasswd", None, 400, "dataset index"),
    ("get", "/image/%2Fetc%2Fpasswd", None, 404, "no such page"),
    ("get", "/image/54", None, 404, "not an item of this project"),
    ("get", "/api/item/-1", None, 400, "dataset index"),
    ("get", "/static/../project.json", None, 404, "no such page"),
]


@pytest.mark.parametrize("method, url, body, status, message", BAD, ids=[f"{b[1]} {b[2]}"[:60] for b in BAD])
def test_bad_requests_answer_4xx_in_one_line_and_write_nothing(client, proj, method, url, body, status, message):
    c = client
    sel0 = proj.selection()[0]["index"]
    if isinstance(body, dict) and body.get("index") == "SEL":
        body = dict(body, index=sel0)
    before = (proj.store.n_rows(), (proj.path / FLAGS_FILE).exists(), len(proj.rounds()))
    resp = getattr(c, method)(url, **({} if body is None else {"json": body}))
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert message in error and "\n" not in error
    assert (proj.store.n_rows(), (proj.path / FLAGS_FILE).exists(), len(proj.rounds())) == before


def test_a_huge_body_a_form_post_and_a_foreign_host_are_refused(client, proj):
    c = client
    n = proj.store.n_rows()
    huge = c.post("/api/label", data=b"{" + b" " * (MAX_BODY + 1) + b"}", content_type="application/json")
    assert huge.status_code == 413 and "at most 16384 bytes" in huge.get_json()["error"]
    form = c.post("/api/label", data={"index": "1", "class": "red", "expect_id": ""})
    assert form.status_code == 415 and "as JSON" in form.get_json()["error"]
    rebinding = c.get("/api/state", headers={"Host": "attacker.example:8765"})
    assert rebinding.status_code == 403 and "not this local server" in rebinding.get_json()["error"]
    assert proj.store.n_rows() == n


def test_a_path_sent_raw_over_http_never_reaches_a_file(tmp_path):
    with LabelServer(copy_project(tmp_path), port=0).start() as server:
        for path in ["/image/../../../../etc/passwd", "/image/%2e%2e/%2e%2e/etc/passwd", "/image//etc/passwd"]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", path, headers={"X-Token": server.token})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert 400 <= resp.status < 500 and b"root:" not in body, (path, resp.status, body)
            assert body.count(b"\n") <= 1 and b'"error"' in body


def test_stop_ends_the_server_even_when_its_wake_up_pipe_is_gone(tmp_path):
    server = LabelServer(copy_project(tmp_path), port=0).start()
    thread = server._thread
    server._server.trigger.close()  # what the loop does when poll reports the pipe closed
    server.stop()
    assert not thread.is_alive()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=2).request("GET", "/")


# --------------------------------------------------------------------------- binding and the token
def test_another_interface_needs_the_flag_and_then_a_token(tmp_path, proj):
    with pytest.raises(ValueError, match=r"--host 0\.0\.0\.0 makes the page reachable .* add --allow-remote"):
        LabelServer(proj, host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match=r"--token must be at least 16 printable characters"):
        LabelServer(proj, port=0, token="short")
    server = LabelServer(proj, host="0.0.0.0", port=0, allow_remote=True)
    try:
        assert len(server.token) >= 24 and server.url.endswith(f"/?token={server.token}")
    finally:
        server.stop()
    c = create_app(LabelingSession(proj), token="t" * 20).test_client()
    assert c.get("/api/state").status_code == 403
    assert c.get("/api/state?token=" + "u" * 20).status_code == 403
    assert c.get("/?token=" + "t" * 20).status_code == 200  # sets the cookie the page's requests carry
    assert c.get("/api/state").status_code == 200
    assert c.get("/api/state", headers={"X-Token": "t" * 20}).status_code == 200


def test_al_label_prints_the_url_and_stops_cleanly_on_ctrl_c(tmp_path):
    folder = copy_project(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "labelnext", "label", "--project", str(folder), "--port",
                             "0", "--annotator", "cli"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "Ctrl-C" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = urllib.parse.urlsplit(line.split()[line.split().index("(Ctrl-C") - 1])
        conn = http.client.HTTPConnection("127.0.0.1", url.port, timeout=10)
        conn.request("GET", "/api/state")
        refused = conn.getresponse()
        assert refused.status == 403 and refused.read()  # on loopback too, only with the printed token
        conn.request("GET", "/api/state?" + url.query)
        assert json.loads(conn.getresponse().read())["annotator"] == "cli"
        conn.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopped; every label is in the store" in out


def test_label_latency_median_is_under_50_ms(tmp_path):
    res = measure(copy_project(tmp_path), n=40)
    assert res["n"] == 40 and res["median_ms"] < 50, res


# --------------------------------------------------------------------------- Label Studio
def test_an_export_made_by_a_real_label_studio_imports(proj):
    """tests/fixtures/labelstudio_real_export.json: this project's first selection, exported with
    `al export --format labelstudio`, imported into Label Studio 1.23.2 and annotated through
    its API (one cancelled annotation, one task annotated twice), then exported as JSON."""
    export = json.loads((DATA / "labelstudio_real_export.json").read_text(encoding="utf-8"))
    assert export[0]["annotations"][0]["completed_by"] and "inner_id" in export[0]  # Label Studio's own fields
    res = proj.import_labels(DATA / "labelstudio_real_export.json")
    assert res["source"] == "labelstudio"
    assert (res["added"], res["cancelled"], res["several"], res["disagreeing"]) == (4, 1, 1, 1)
    current = {h["item"]: h["class_name"] for i in range(proj.config["n_items"]) for h in proj.store.history(i)[-1:]
               if h["source"] == "labelstudio"}
    expected = {t["data"]["index"]: max((a for a in t["annotations"] if not a["was_cancelled"]),
                                        key=lambda a: (a["updated_at"], a["id"]))["result"][0]["value"]["choices"][0]
                for t in export if any(not a["was_cancelled"] for a in t["annotations"])}
    assert current == expected and len(current) == 4


def test_loopback_needs_the_token_too_and_the_printed_url_carries_it_quoted(tmp_path):
    token = "a+b#c&d/e=f g" + "x" * 8
    with LabelServer(copy_project(tmp_path), port=0, token=token).start() as server:
        assert server.url.endswith("/?token=" + urllib.parse.quote(token, safe=""))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for path in ("/", "/api/state", "/image/0", "/learning_curve.png"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 403 and b"needs its token" in resp.read(), path
        conn.request("GET", server.url.split(str(server.port), 1)[1])  # the printed URL, as a browser sends it
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        cookie = resp.getheader("Set-Cookie")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        conn.request("GET", "/api/state", headers={"Cookie": cookie.split(";")[0]})  # a reload: the cookie is enough
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["items"]
        conn.close()
    with LabelServer(copy_project(tmp_path / "b"), port=0) as server:  # a random one when none is given
        assert len(server.token) >= 24 and server.url.endswith(f"?token={server.token}")


def test_an_image_file_replaced_or_repointed_after_start_is_refused_not_served(tmp_path):
    data = make_image_folder(tmp_path / "colours", n_per_class=3, n_unlabeled=3)
    with LabelingProject.create(tmp_path / "proj", data, arch="small_cnn", steps=5, image_size=16) as proj:
        session = LabelingSession(proj)
        paths = [Path(p) for p in proj.data.train_paths]
        body, mime = session.image(0)
        assert mime == "image/png" and body == paths[0].read_bytes()
        secret = tmp_path / "secret.png"
        Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(secret)
        paths[1].unlink()
        paths[1].symlink_to(secret)  # re-pointed after the project loaded its pixels
        with pytest.raises(RequestError, match="image file of item 1 changed since the project was loaded") as e:
            session.image(1)
        assert e.value.status == 409
        paths[2].write_bytes(b"not an image")
        with pytest.raises(RequestError, match="item 2 changed"):
            session.image(2)


@pytest.mark.parametrize("classes, keys", [
    (["blue", "green", "red"], {"blue": "1", "green": "2", "red": "3"}),
    ([str(d) for d in range(10)], {str(d): str(d) for d in range(10)}),
    (["0", "1", "7", "other"], {"0": "0", "1": "1", "7": "7", "other": "2"}),
    ([f"c{i}" for i in range(12)], {f"c{i}": k for i, k in enumerate("1234567890")}),
])
def test_page_keys_match_digit_named_classes(classes, keys):
    assert class_keys(classes) == keys


def test_the_learning_curve_is_served_for_a_relative_project_path(tmp_path, monkeypatch):
    folder = copy_project(tmp_path)
    with LabelingProject(folder) as p:
        p.status()
    monkeypatch.chdir(tmp_path)
    with LabelingProject("proj") as p:
        c = create_app(LabelingSession(p)).test_client()
        resp = c.get("/learning_curve.png")
        assert resp.status_code == 200 and resp.data[:4] == b"\x89PNG"
        assert c.get("/api/state").get_json()["keys"] == {"blue": "1", "green": "2", "red": "3"}
