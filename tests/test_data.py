"""Finding, downloading and splitting datasets."""

import functools
import http.server
import threading

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from conftest import FILES, spec_for, write_dataset
from fashion_cnn import FashionCNNError, load_dataset, train_val_split
from fashion_cnn.data import LabeledImages, load_split, write_idx
from fashion_cnn.data.fetch import locate


def test_load_from_data_dir_and_env(toy_dir, monkeypatch):
    ds = load_dataset("fashion-mnist", toy_dir)
    assert (len(ds.train), len(ds.test)) == (300, 100)
    assert ds.train.images.shape == (300, 28, 28) and ds.train.labels.dtype == np.int64
    assert ds.class_names("ko")[8] == "가방" and ds.classes[9] == "Ankle boot"
    monkeypatch.setenv("FASHION_CNN_DATA", str(toy_dir.parent))  # the <dataset>/ subfolder is not the name here...
    with pytest.raises(FashionCNNError, match=r"\$FASHION_CNN_DATA .* lacks"):
        load_dataset("fashion-mnist")
    (toy_dir.parent / "fashion-mnist").symlink_to(toy_dir)  # ...but <dir>/fashion-mnist/ is found
    assert len(load_dataset("fashion-mnist").test) == 100


def test_wrong_data_dir_and_missing_files(tmp_path, toy_dir):
    with pytest.raises(FashionCNNError, match="is not a folder"):
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    (toy_dir / FILES["test_labels"]).unlink()
    with pytest.raises(FashionCNNError, match="lacks t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", toy_dir)


def test_unpacked_files_are_accepted(tmp_path):
    from conftest import make_images

    x, y = make_images(20, 0)
    for role, arr in zip(FILES, (x, y, x, y)):
        write_idx(tmp_path / FILES[role].removesuffix(".gz"), arr)
    assert len(load_dataset("mnist", tmp_path).train) == 20


def test_counts_must_agree_and_labels_fit(tmp_path, toy_dir):
    write_idx(toy_dir / FILES["train_labels"], np.zeros(299, np.uint8))
    with pytest.raises(FashionCNNError, match="300 images but .* 299 labels"):
        load_dataset("fashion-mnist", toy_dir)
    write_idx(toy_dir / FILES["train_labels"], np.full(300, 10, np.uint8))
    with pytest.raises(FashionCNNError, match="label 10 but the dataset has 10 classes"):
        load_dataset("fashion-mnist", toy_dir)


def test_unknown_dataset():
    with pytest.raises(FashionCNNError, match="unknown dataset 'cifar'; choose one of: fashion-mnist, mnist, kmnist"):
        load_dataset("cifar")


def test_split_matches_sklearn_exactly():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (1000, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 1000)
    for frac, seed in ((0.2, 42), (0.3, 7)):
        tr, va = train_val_split(LabeledImages(x, y), frac, seed)
        xtr, xva, ytr, yva = train_test_split(x, y, test_size=frac, random_state=seed)
        np.testing.assert_array_equal(tr.images, xtr)
        np.testing.assert_array_equal(va.images, xva)
        np.testing.assert_array_equal(tr.labels, ytr)
        np.testing.assert_array_equal(va.labels, yva)
    with pytest.raises(FashionCNNError, match="between 0 and 1"):
        train_val_split(LabeledImages(x, y), 1.5)


def test_real_split_is_the_tutorials(real_dir):
    ds = load_dataset("fashion-mnist", real_dir)
    tr, va = train_val_split(ds.train)
    assert (len(tr), len(va), len(ds.test)) == (48000, 12000, 10000)
    xtr, xva, ytr, yva = train_test_split(ds.train.images, ds.train.labels, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(va.labels, yva)
    np.testing.assert_array_equal(tr.images[:100], xtr[:100])
    assert int(va.labels[0]) == 8  # the tutorial's handbag
    assert ds.train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert len(load_split("val", data_dir=real_dir)) == 12000


def test_files_of_another_dataset_are_refused(real_dir):
    with pytest.raises(FashionCNNError, match="belongs to fashion-mnist, not mnist"):
        load_dataset("mnist", real_dir)


# --- downloading, against a local HTTP server -------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    write_dataset(root / "good")
    write_dataset(root / "corrupt", seed=5)  # valid IDX files, but not the ones the checksums name
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)  # shutdown() waits a poll
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_tries_the_next_mirror_and_verifies(server, tmp_path):
    url, root = server
    spec = spec_for(root / "good", mirrors=(f"{url}/missing/", f"{url}/good/"))
    paths = locate(spec)
    cache = tmp_path / "cache" / "toy"
    assert all(p.parent == cache and p.is_file() for p in paths.values())
    ds = load_dataset(spec)
    assert len(ds.train) == 300
    # A second load uses the cache: no mirror needed.
    spec_offline = spec_for(root / "good", mirrors=("http://127.0.0.1:9/",))
    assert len(load_dataset(spec_offline).test) == 100


def test_checksum_mismatch_is_refused_and_nothing_is_cached(server, tmp_path):
    url, root = server
    spec = spec_for(root / "good", mirrors=(f"{url}/corrupt/",))
    with pytest.raises(FashionCNNError, match="could not download .* from any mirror .*--data-dir"):
        locate(spec)
    cache = tmp_path / "cache" / "toy"
    assert not cache.exists() or not any(cache.iterdir())


def test_no_download_when_forbidden(tmp_path, server):
    url, root = server
    spec = spec_for(root / "good", mirrors=(f"{url}/good/",))
    with pytest.raises(FashionCNNError, match="not in the cache"):
        locate(spec, download=False)
