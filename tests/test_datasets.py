"""Datasets and feeding: the digits split, npz files, image folders, the image reader, and the core's preprocessing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from benchharness_datasets import ImageFolder, ImageFolderOptions, Npz, NpzOptions
from benchharness_datasets.digits import split_indices
from benchharness_datasets.images import have_pillow, read_image

from benchharness.api import DatasetContext, DatasetSpec, InputSpec, LabelledData, feed_dataset
from benchharness.errors import BenchError
from benchharness.feeding import convert_channels, resize_images

# ------------------------------------------------------------------ digits


def test_the_digits_split_is_stratified_disjoint_and_fixed():
    labels = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])  # the digits' class sizes
    first, again = split_indices(labels), split_indices(labels)
    assert all(np.array_equal(first[s], again[s]) for s in ("train", "test"))
    assert len(first["test"]) == 450 and len(first["train"]) == 1347
    assert not set(first["test"]) & set(first["train"])
    per_class = np.bincount(labels[first["test"]], minlength=10)
    assert per_class.tolist() == [round(0.25 * n) for n in np.bincount(labels)]
    assert len(set(labels[first["test"][:20]])) >= 8  # shuffled: the first samples mix the classes
    assert not np.array_equal(split_indices(labels, seed=1)["test"], first["test"])


def test_the_digits_dataset_loads_its_fixed_split():
    pytest.importorskip("sklearn")
    from benchharness_datasets.digits import load_split

    test, train = load_split("test"), load_split("train")
    assert test.inputs.shape == (450, 8, 8, 1) and train.inputs.shape == (1347, 8, 8, 1)
    assert test.inputs.dtype == np.float32 and 0.0 <= test.inputs.min() and test.inputs.max() == 1.0
    assert np.bincount(test.labels).tolist() == [44, 46, 44, 46, 45, 46, 45, 45, 44, 45]
    assert test.info["split_sizes"] == {"train": 1347, "test": 450} and test.info["split_seed"] == 0
    assert np.array_equal(load_split("test").inputs, test.inputs)
    # no image of the test split is in the training split
    train_rows = {row.tobytes() for row in train.inputs}
    assert sum(row.tobytes() in train_rows for row in test.inputs) <= 5  # the digits hold a few exact duplicates


# ------------------------------------------------------------------ npz


def ctx(tmp_path: Path) -> DatasetContext:
    return DatasetContext(base_dir=tmp_path, cache_dir=tmp_path / "cache", seed=0)


def test_npz_samples_are_fed_as_they_are(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(12, dtype=np.float32).reshape(3, 4), y=np.array([0, 1, 2]))
    data = Npz().load(NpzOptions(path="d.npz", inputs_key="x", labels_key="y"), ctx(tmp_path))
    assert data.images is False and data.inputs.shape == (3, 4) and data.labels.tolist() == [0, 1, 2]


def test_npz_images_become_nhwc_floats(tmp_path):
    images = np.zeros((2, 3, 4, 5), dtype=np.uint8)  # NCHW
    images[1, 2, 3, 4] = 255
    np.savez(tmp_path / "d.npz", inputs=images, labels=np.array([0, 1]))
    data = Npz().load(NpzOptions(path="d.npz", array_layout="NCHW"), ctx(tmp_path))
    assert data.inputs.shape == (2, 4, 5, 3) and data.inputs.dtype == np.float32
    assert data.inputs[1, 3, 4, 2] == 1.0 and data.inputs.sum() == 1.0


def test_npz_problems_name_the_file(tmp_path):
    with pytest.raises(BenchError, match=f"dataset file not found: {tmp_path / 'no.npz'}"):
        Npz().load(NpzOptions(path="no.npz"), ctx(tmp_path))
    np.savez(tmp_path / "d.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(BenchError, match=r"d.npz has no array 'inputs', 'labels'; it has: a, b"):
        Npz().load(NpzOptions(path="d.npz"), ctx(tmp_path))
    np.savez(tmp_path / "f.npz", inputs=np.zeros(3), labels=np.zeros(3))
    with pytest.raises(BenchError, match=r"labels 'labels' are float64, expected integer class indices"):
        Npz().load(NpzOptions(path="f.npz"), ctx(tmp_path))
    (tmp_path / "t.npz").write_text("not a zip")
    with pytest.raises(BenchError, match=r"t.npz: not a readable .npz file"):
        Npz().load(NpzOptions(path="t.npz"), ctx(tmp_path))


# ------------------------------------------------------------------ images


def png(pixels: np.ndarray, filters: list[int] | None = None, palette: np.ndarray | None = None) -> bytes:
    """A PNG file of ``pixels`` ([H, W, C], uint8 or uint16), each row written with the given filter type."""
    height, width, channels = pixels.shape
    colour = 3 if palette is not None else {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    depth = 16 if pixels.dtype == np.uint16 else 8
    data = pixels.astype(">u2" if depth == 16 else np.uint8).tobytes()
    stride, bpp = width * channels * depth // 8, channels * depth // 8
    raw, previous = bytearray(), bytes(stride)
    for y in range(height):
        row = data[y * stride : (y + 1) * stride]
        kind = (filters or [0])[y % len(filters or [0])]
        encoded = bytearray(stride)
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 0:
                predictor = 0
            elif kind == 1:
                predictor = a
            elif kind == 2:
                predictor = b
            elif kind == 3:
                predictor = (a + b) >> 1
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            encoded[i] = (row[i] - predictor) & 0xFF
        raw += bytes([kind]) + encoded
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if palette is not None:
        body += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_reader_undoes_every_row_filter(tmp_path, channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, size=(10, 7, channels), dtype=np.uint8)
    path = tmp_path / "p.png"
    path.write_bytes(png(pixels, filters=[0, 1, 2, 3, 4]))
    image = read_image(path)
    kept = channels - 1 if channels in (2, 4) else channels  # alpha is dropped
    assert image.shape == (10, 7, kept) and image.dtype == np.float32
    np.testing.assert_allclose(image, pixels[:, :, :kept] / 255.0, rtol=0, atol=1e-7)


def test_png_reader_takes_16_bits_and_palettes(tmp_path):
    deep = np.array([[[0], [65535]], [[32768], [1]]], dtype=np.uint16)
    (tmp_path / "d.png").write_bytes(png(deep, filters=[4]))
    np.testing.assert_allclose(read_image(tmp_path / "d.png")[:, :, 0], deep[:, :, 0] / 65535.0, atol=1e-7)
    colours = np.array([[255, 0, 0], [0, 0, 255]])
    (tmp_path / "p.png").write_bytes(png(np.array([[[0], [1]]], dtype=np.uint8), palette=colours))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), [[[1, 0, 0], [0, 0, 1]]])
    greys = np.array([[0, 0, 0], [255, 255, 255]])
    (tmp_path / "g.png").write_bytes(png(np.array([[[1], [0]]], dtype=np.uint8), palette=greys))
    assert read_image(tmp_path / "g.png").shape == (1, 2, 1)  # a grey palette reads as one channel


def test_pgm_and_ppm_files(tmp_path):
    (tmp_path / "a.pgm").write_bytes(b"P5\n# a comment\n2 1\n255\n" + bytes([0, 255]))
    np.testing.assert_array_equal(read_image(tmp_path / "a.pgm"), [[[0.0], [1.0]]])
    (tmp_path / "b.ppm").write_bytes(b"P6 1 1 15 " + bytes([15, 0, 5]))
    np.testing.assert_allclose(read_image(tmp_path / "b.ppm"), [[[1.0, 0.0, 1 / 3]]])


@pytest.mark.skipif(have_pillow(), reason="Pillow reads JPEG")
def test_formats_beyond_png_pgm_ppm_say_they_need_pillow(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(BenchError, match=r"a.jpg: reading .jpg files needs Pillow \(pip install pillow\)"):
        read_image(tmp_path / "a.jpg")
    (tmp_path / "b.png").write_bytes(b"GIF89a")
    with pytest.raises(BenchError, match=r"b.png: not a PNG file"):
        read_image(tmp_path / "b.png")


def write_folder(root: Path, classes: dict[str, list[np.ndarray]]) -> Path:
    for name, images in classes.items():
        (root / name).mkdir(parents=True)
        for i, pixels in enumerate(images):
            (root / name / f"{i:02d}.png").write_bytes(png(pixels))
    return root


def grey(value: int, size: int = 4) -> np.ndarray:
    return np.full((size, size, 1), value, dtype=np.uint8)


def test_an_image_folder_labels_by_sorted_folder_and_mixes_the_classes(tmp_path):
    root = write_folder(
        tmp_path / "data",
        {"zebra": [grey(10), grey(11)], "apple": [grey(20)], "mango": [grey(30), grey(31), grey(32)]},
    )
    (root / "apple" / "notes.txt").write_text("not an image")
    data = ImageFolder().load(ImageFolderOptions(path="data"), ctx(tmp_path))
    assert data.classes == ["apple", "mango", "zebra"]
    assert data.labels.tolist() == [0, 1, 2, 1, 2, 1]  # round-robin over the classes
    assert np.round(data.inputs[:, 0, 0, 0] * 255).tolist() == [20, 30, 10, 31, 11, 32]
    assert data.inputs.shape == (6, 4, 4, 1) and data.info["files"] == 6


def test_an_image_folder_with_colour_and_sizes(tmp_path):
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[..., 0] = 255
    root = write_folder(tmp_path / "data", {"a": [grey(255)], "b": [colour]})
    data = ImageFolder().load(ImageFolderOptions(path="data"), ctx(tmp_path))
    assert data.inputs.shape == (2, 4, 4, 3)  # one colour image makes every image colour
    assert data.inputs[0].min() == 1.0 and data.inputs[1, 0, 0].tolist() == [1.0, 0.0, 0.0]
    (root / "b" / "01.png").write_bytes(png(grey(0, size=6)))
    with pytest.raises(BenchError, match=r"images differ in size \(00.png is 4x4, b/01.png another\); set 'size'"):
        ImageFolder().load(ImageFolderOptions(path="data"), ctx(tmp_path))
    resized = ImageFolder().load(ImageFolderOptions(path="data", size=5), ctx(tmp_path))
    assert resized.inputs.shape == (3, 5, 5, 3)


def test_an_image_folder_that_is_missing_or_empty(tmp_path):
    with pytest.raises(BenchError, match=f"dataset folder not found: {tmp_path / 'nope'}"):
        ImageFolder().load(ImageFolderOptions(path="nope"), ctx(tmp_path))
    (tmp_path / "flat").mkdir()
    with pytest.raises(BenchError, match="has no sub-folders: expected one folder of images per class"):
        ImageFolder().load(ImageFolderOptions(path="flat"), ctx(tmp_path))


# ------------------------------------------------------------------ feeding


def test_bilinear_and_nearest_resizing_match_torch():
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(0).random((2, 8, 6, 3), dtype=np.float32)
    for height, width in ((32, 32), (5, 4), (8, 13)):
        ours = resize_images(images, height, width, "bilinear")
        theirs = torch.nn.functional.interpolate(
            torch.from_numpy(images).permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=False
        )
        np.testing.assert_allclose(ours, theirs.permute(0, 2, 3, 1).numpy(), atol=1e-6)
        nearest = torch.nn.functional.interpolate(
            torch.from_numpy(images).permute(0, 3, 1, 2), size=(height, width), mode="nearest-exact"
        )
        np.testing.assert_array_equal(resize_images(images, height, width, "nearest"), nearest.permute(0, 2, 3, 1))


def test_channel_conversions():
    rgb = np.array([[[[1.0, 0.0, 0.0]]]], dtype=np.float32)
    assert convert_channels(rgb, 1).item() == pytest.approx(0.299)
    assert convert_channels(np.ones((1, 1, 1, 1), np.float32), 3).tolist() == [[[[1.0, 1.0, 1.0]]]]
    assert convert_channels(np.ones((1, 1, 1, 4), np.float32), 3).shape == (1, 1, 1, 3)
    with pytest.raises(BenchError, match="cannot feed 3-channel images into a 2-channel input"):
        convert_channels(rgb, 2)


def images(n: int = 2) -> LabelledData:
    pixels = np.zeros((n, 2, 2, 1), dtype=np.float32)
    pixels[:, 0, 0, 0] = 1.0
    return LabelledData(inputs=pixels, labels=np.arange(n))


def test_feeding_lays_out_normalises_and_casts():
    nchw = InputSpec(name="image", shape=["batch", 3, 4, 4], dtype="float32")
    fed = feed_dataset(images(), DatasetSpec(name="d", mean=[0.5], std=[0.25]), nchw)
    assert fed.shape == (2, 3, 4, 4) and fed.dtype == np.float32
    assert fed[0, :, 0, 0].tolist() == [2.0, 2.0, 2.0] and fed[0, 0, 3, 3] == -2.0
    nhwc = InputSpec(name="image", shape=["batch", 2, 2, 3], dtype="float32")
    per_channel = DatasetSpec(name="d", layout="NHWC", mean=[0.0, 0.5, 1.0])
    assert feed_dataset(images(), per_channel, nhwc)[0, 0, 0].tolist() == [1.0, 0.5, 0.0]
    raw = InputSpec(name="image", shape=["batch", 1, 2, 2], dtype="uint8")
    assert feed_dataset(images(), DatasetSpec(name="d", resize="none"), raw)[0, 0].tolist() == [[255, 0], [0, 0]]
    with pytest.raises(BenchError, match=r"images of 2x2 do not fit input 'image' \[2, 1, 5, 5\] \(NCHW\)"):
        feed_dataset(
            images(), DatasetSpec(name="d", resize="none"), nchw.model_copy(update={"shape": ["batch", 1, 5, 5]})
        )
    flat = InputSpec(name="x", shape=["batch", 4], dtype="float32")
    with pytest.raises(BenchError, match=r"the dataset gives images; input 'x' \[2, 4\] is not a batch of images"):
        feed_dataset(images(), DatasetSpec(name="d"), flat)
    with pytest.raises(BenchError, match=r"images feed float or uint8 inputs; input 'image' \[2, 3, 4, 4\] is int64"):
        feed_dataset(images(), DatasetSpec(name="d"), nchw.model_copy(update={"dtype": "int64"}))


# ------------------------------------------------------------------ the suite's dataset entry


def test_bad_dataset_entries_are_one_line_each_with_file_and_line(tmp_path):
    from conftest import write_onnx
    from onnx import TensorProto

    from benchharness.errors import SuiteError
    from benchharness.plugins import PluginHost
    from benchharness.suite import load_suite

    write_onnx(tmp_path / "img.onnx", {"image": (["N", 3, 8, 8], TensorProto.FLOAT)})
    write_onnx(tmp_path / "two.onnx", {"a": (["N", 4], TensorProto.FLOAT), "b": (["N", 4], TensorProto.FLOAT)})
    write_onnx(tmp_path / "ids.onnx", {"ids": (["N", 4], TensorProto.INT64)})
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\n"
        "models:\n"
        "  - {source: onnx, path: img.onnx, name: a, dataset: {name: digts}}\n"  # line 3
        "  - {source: onnx, path: img.onnx, name: b, dataset: {name: npz, pth: x.npz}}\n"  # 4
        "  - {source: onnx, path: img.onnx, name: c, dataset: {name: digits, mean: [0.5, 0.5]}}\n"  # 5
        "  - {source: onnx, path: two.onnx, name: d, dataset: {name: digits}}\n"  # 6
        "  - {source: onnx, path: two.onnx, name: e, dataset: {name: digits, input: c}}\n"  # 7
        "  - {source: onnx, path: ids.onnx, name: f, dataset: {name: npz, path: x.npz, std: [2], layout: NHWC}}\n"  # 8
        "  - {source: onnx, path: img.onnx, name: g, dataset: {name: digits, layout: NCWH, limit: 0}}\n"  # 9
        "  - {source: onnx, path: img.onnx, name: h, dataset: [digits]}\n"  # 10
        "backends: [{name: onnxruntime}]\n"
    )
    host = PluginHost(autoload=False)
    with pytest.raises(SuiteError) as info:
        load_suite(suite, host)
    p = str(suite)
    assert info.value.problems == [
        f"{p}:9 models[6].dataset.layout: Input should be 'NCHW' or 'NHWC' (did you mean 'NCHW'?)",
        f"{p}:9 models[6].dataset.limit: Input should be greater than 0",
        f"{p}:10 models[7].dataset: Input should be a mapping with 'name', got a list",
    ]
    suite.write_text(
        suite.read_text()
        .replace("layout: NCWH, limit: 0", "layout: NHWC")
        .replace("  - {source: onnx, path: img.onnx, name: h, dataset: [digits]}\n", "")
    )
    with pytest.raises(SuiteError) as info:
        load_suite(suite, host)
    assert info.value.problems[0] == (
        f"{p}:3 models[0].dataset.name: unknown dataset 'digts' (did you mean 'digits'?); "
        "known: digits, image-folder, npz"
    )
    assert info.value.problems[1:3] == [
        f"{p}:4 models[1].dataset.path: Field required",
        f"{p}:4 models[1].dataset.pth: unknown field (did you mean 'path'?); known: array_layout, input, inputs_key, "
        "labels_key, layout, limit, max_value, mean, name, path, resize, std",
    ]
    suite.write_text(suite.read_text().replace("digts", "digits").replace("pth:", "path:"))
    with pytest.raises(SuiteError) as info:
        load_suite(suite, host)
    assert info.value.problems == [
        f"{p}:5 models[2].dataset.mean: mean has 2 values; input 'image' [batch, 3, 8, 8] (NCHW) takes 1 or 3",
        f"{p}:6 models[3].dataset: model 'd' has 2 inputs without a fixed value (a, b): name the one the dataset "
        "feeds with 'input'",
        f"{p}:7 models[4].dataset.input: model 'e' has no input 'c'; its inputs: a, b",
        f"{p}:8 models[5].dataset.std: input 'ids' [batch, 4] is int64: 'std' normalises float inputs only",
        f"{p}:8 models[5].dataset.layout: 'layout' applies to image inputs (rank 4); input 'ids' [batch, 4] has rank 2",
    ]
