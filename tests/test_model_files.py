"""Model files: no code runs from a pickle, mismatched files are refused by name, writes are atomic."""

import builtins
import json
import os
import pickle
import stat

import pytest
import torch
from safetensors.torch import load_file, save

from fashion_cnn import FashionCNNError, build_model, load_model, save_model
from fashion_cnn.cli import main
from fashion_cnn.files import atomic_open, atomic_path, atomic_write_text, remove_temporaries
from fashion_cnn.models.files import load_torch_weights


class Payload:
    """Unpickling this creates ``marker``: what a malicious model file would do, harmlessly."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def payload_files(tmp_path, marker):
    files = {}
    files["pickle-p4.pt"] = pickle.dumps({"dense.linear.weight": Payload(marker)}, protocol=4)
    files["pickle-p0.pt"] = pickle.dumps(Payload(marker), protocol=0)
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": Payload(marker)}, tmp_path / "torch-save.pt")
    files["torch-save.pt"] = (tmp_path / "torch-save.pt").read_bytes()
    files["disguised.safetensors"] = files["pickle-p4.pt"]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in files]


def test_the_payload_is_real(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker))).close()  # unpickling opened (created) the marker file
    assert marker.exists()  # so its absence below means the loader did not unpickle


def test_pickle_with_a_payload_is_refused_and_does_not_run(tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    for path in payload_files(tmp_path, marker):
        with pytest.raises(FashionCNNError, match="pickle/torch.save file, which can run code when loaded"):
            load_model(path)
        assert main(["evaluate", str(path)]) == 2
        assert "pickle" in capsys.readouterr().err
        # Even the explicit door for PyTorch weights reads tensors only.
        assert main(["export", str(path), "--allow-torch-weights", "--format", "safetensors", "-o", str(tmp_path / "out.safetensors")]) == 2
        err = capsys.readouterr().err
        assert "can be loaded without running code" in err and "fashion-cnn refuses it" in err
        assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_plain_torch_weights_convert_only_with_the_flag(tmp_path, capsys):
    model = build_model()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    assert main(["export", str(tmp_path / "weights.pt"), "--format", "safetensors"]) == 2
    assert "--allow-torch-weights" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "weights.pt"), "--allow-torch-weights", "--format", "safetensors"]) == 0
    loaded = load_model(tmp_path / "weights.safetensors")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert loaded.meta["classes"][9] == "Ankle boot" and loaded.meta["source"].startswith("converted from PyTorch weights")
    torch.save({"dense.linear.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(FashionCNNError, match="does not match the architecture"):
        load_torch_weights(tmp_path / "other.pt")


def forged(path, header_meta, tensors):
    path.write_bytes(save(tensors, metadata={"format": "fashion-cnn", "fashion_cnn": json.dumps(header_meta)}))
    return path


def test_metadata_that_does_not_match_the_tensors_is_refused_by_name(tmp_path):
    model = build_model()
    save_model(tmp_path / "good.safetensors", model)
    meta = load_model(tmp_path / "good.safetensors").meta
    tensors = load_file(tmp_path / "good.safetensors")

    small = {**meta, "arch": {"name": "tutorial-cnn", "kwargs": {"hidden": 50}}}
    with pytest.raises(
        FashionCNNError, match=r"tensor dense.linear.weight is \(100, 3136\) torch.float32, the architecture needs \(50, 3136\)"
    ):
        load_model(forged(tmp_path / "shapes.safetensors", small, tensors))

    missing = {k: v for k, v in tensors.items() if k != "dense_1.linear.bias"}
    with pytest.raises(FashionCNNError, match="missing dense_1.linear.bias"):
        load_model(forged(tmp_path / "missing.safetensors", meta, missing))

    extra = {**tensors, "backdoor.weight": torch.zeros(1)}
    with pytest.raises(FashionCNNError, match="unexpected backdoor.weight"):
        load_model(forged(tmp_path / "extra.safetensors", meta, extra))

    as_double = {**tensors, "dense.linear.bias": tensors["dense.linear.bias"].double()}
    with pytest.raises(FashionCNNError, match="torch.float64, the architecture needs"):
        load_model(forged(tmp_path / "dtype.safetensors", meta, as_double))


def test_metadata_naming_a_giant_model_allocates_nothing(tmp_path):
    tensors = load_file(save_model(tmp_path / "ok.safetensors", build_model()))
    giant = {"arch": {"name": "tutorial-cnn", "kwargs": {"image_size": 100_000, "hidden": 100_000}}}
    with pytest.raises(FashionCNNError, match=r"the architecture needs \(100000, 40000000000\)"):
        load_model(forged(tmp_path / "giant.safetensors", giant, tensors))  # 4·10^15 floats, were it allocated
    overflow = {"arch": {"name": "tutorial-cnn", "kwargs": {"image_size": 1_000_000, "hidden": 1_000_000_000}}}
    with pytest.raises(FashionCNNError, match="arguments it cannot be built with"):
        load_model(forged(tmp_path / "overflow.safetensors", overflow, tensors))


@pytest.mark.parametrize(
    "arch, message",
    [
        ({"name": "resnet"}, "bad.safetensors: unknown model 'resnet'; choose one of: .*keras-sequential, .*tutorial-cnn"),
        ({"name": "tutorial-cnn", "kwargs": {"hidden": -5}}, "names architecture 'tutorial-cnn' with arguments it cannot be built with"),
        (
            {"name": "tutorial-cnn", "kwargs": {"nope": 1}},
            "model 'tutorial-cnn' does not take these arguments .*unexpected keyword argument 'nope'",
        ),
        ("tutorial-cnn", r"bad.safetensors has fashion-cnn metadata without a valid 'arch' \(name and kwargs\)"),
        ({"kwargs": {}}, r"bad.safetensors has fashion-cnn metadata without a valid 'arch' \(name and kwargs\)"),
    ],
)
def test_unbuildable_architectures_are_refused(tmp_path, arch, message):
    tensors = load_file(save_model(tmp_path / "ok.safetensors", build_model()))
    with pytest.raises(FashionCNNError, match=message):
        load_model(forged(tmp_path / "bad.safetensors", {"arch": arch}, tensors))


def test_loading_does_not_move_a_seeded_rng(tmp_path):
    save_model(tmp_path / "m.safetensors", build_model())
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_model(tmp_path / "m.safetensors")
    assert torch.equal(torch.rand(3), expected)


def test_model_file_records_what_consumers_need(tmp_path):
    save_model(tmp_path / "m.safetensors", build_model(), classes=list("abcdefghij"), metrics={"val_loss": 0.3})
    meta = load_model(tmp_path / "m.safetensors").meta
    assert meta["arch"] == {"name": "tutorial-cnn", "kwargs": {}} and meta["input"]["scale"] == pytest.approx(1 / 255)
    assert {"fashion_cnn", "torch", "python"} <= set(meta["versions"]) and meta["metrics"]["val_loss"] == 0.3


class Midway(Exception):
    """A failure in the middle of a write (raised by the test itself)."""


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_writer_that_fails_midway_leaves_the_old_file(tmp_path):
    target = tmp_path / "history.json"
    atomic_write_text(target, "old, complete\n")
    with pytest.raises(Midway, match="the writer failed"):
        with atomic_open(target) as f:
            f.write("new, half")
            raise Midway("the writer failed")
    assert target.read_text() == "old, complete\n" and leftovers(tmp_path) == []

    figure = tmp_path / "loss.png"
    figure.write_bytes(b"old picture")
    with pytest.raises(Midway, match="the painter failed"):
        with atomic_path(figure) as tmp:
            tmp.write_bytes(b"half a pic")
            raise Midway("the painter failed")
    assert figure.read_bytes() == b"old picture" and leftovers(tmp_path) == []


def test_save_model_failing_midway_keeps_the_previous_model(tmp_path, monkeypatch):
    path = save_model(tmp_path / "best.safetensors", build_model(), epoch=1)
    before = path.read_bytes()

    def fail_during_fsync(fd):
        os.write(fd, b"garbage")  # the temporary file is half written when the disk "fills"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("fashion_cnn.files.os.fsync", fail_during_fsync)
    with pytest.raises(FashionCNNError, match=r"best.safetensors \(No space left on device\); the previous file, if any, is kept"):
        save_model(path, build_model(), epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before and load_model(path).meta["epoch"] == 1
    assert leftovers(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    save_model(tmp_path / "m.safetensors", build_model())
    atomic_write_text(tmp_path / "t.txt", "x")
    for name in ("m.safetensors", "t.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_stale_temporaries_are_removed(tmp_path):
    for name in (".best.abc123.tmp.safetensors", ".history.json.x1y2.tmp", "history.json", ".keep"):
        (tmp_path / name).write_text("x")
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".best.abc123.tmp.safetensors", ".history.json.x1y2.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep", "history.json"]
