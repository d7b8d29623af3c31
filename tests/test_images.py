"""Decoding pictures and making them look like Fashion-MNIST: each step, each switch, each bad file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fashion_cnn.data.images import (
    DamagedImage,
    ImageTooLarge,
    Preprocessing,
    UnsupportedImage,
    background_level,
    load_image,
    open_image,
    preprocess,
    to_png,
)
from fashion_cnn.errors import FashionCNNError


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def canvas(h: int, w: int, background: int, box: tuple[int, int, int, int], value: int) -> np.ndarray:
    """A (h, w) picture of ``background`` with a rectangle (top, left, height, width) of ``value``."""
    a = np.full((h, w), background, np.uint8)
    top, left, bh, bw = box
    a[top : top + bh, left : left + bw] = value
    return a


def extent(x: np.ndarray, threshold: int = 40):
    rows, cols = np.flatnonzero((x > threshold).any(1)), np.flatnonzero((x > threshold).any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_fashion_mnist_like_image_comes_through_unchanged():
    a = np.zeros((28, 28), np.uint8)
    a[:, 7:21] = np.random.default_rng(0).integers(100, 256, (28, 14))
    assert np.array_equal(preprocess(a), a)


def test_trim_pad_and_centre_keep_the_aspect_ratio():
    # A light 80×40 object off-centre on a 200×300 black picture.
    x = preprocess(canvas(200, 300, 0, (10, 200, 80, 40), 200))
    top, bottom, left, right = extent(x)
    assert (top, bottom) == (0, 27)  # the longest side fills the 28 pixels
    assert right - left + 1 == 14  # 40/80 of 28: the shape is kept
    assert left == 7 and 27 - right == 7  # centred


def test_stretch_instead_of_padding_fills_the_square():
    x = preprocess(canvas(200, 300, 0, (10, 200, 80, 40), 200), Preprocessing(keep_aspect=False))
    assert extent(x) == (0, 27, 0, 27)


def test_without_trim_the_margins_stay():
    x = preprocess(canvas(280, 280, 0, (0, 0, 140, 140), 200), Preprocessing(trim=False))
    top, bottom, left, right = extent(x)
    assert (top, left) == (0, 0) and 12 <= bottom <= 14 and 12 <= right <= 14


def test_light_background_is_inverted_to_a_light_object_on_black():
    photo = canvas(120, 90, 235, (20, 20, 80, 50), 40)  # a dark garment on an off-white table
    x = preprocess(photo)
    assert x[0, 0] == 0 and x[14, 14] > 200
    assert background_level(photo)[0] == 235


def test_invert_never_keeps_a_light_background_and_always_inverts_a_dark_one():
    photo = canvas(120, 90, 235, (20, 20, 80, 50), 40)
    assert preprocess(photo, Preprocessing(invert="never"))[0, 0] > 200
    x = preprocess(canvas(120, 90, 0, (20, 20, 80, 50), 200), Preprocessing(invert="always"))
    assert x[0, 0] > 200 and x[14, 14] < 80


def test_level_makes_an_off_white_background_black_and_can_be_turned_off():
    photo = canvas(120, 120, 225, (30, 10, 60, 100), 30)  # wide object: the padded rows show the background
    assert preprocess(photo)[1, 14] == 0
    assert 20 <= preprocess(photo, Preprocessing(level=False))[1, 14] <= 40  # 255 - 225 = 30 left as it was


def test_noisy_background_does_not_widen_the_trim():
    rng = np.random.default_rng(1)
    photo = canvas(200, 200, 230, (50, 80, 100, 40), 30).astype(np.int16) + rng.normal(0, 4, (200, 200)).astype(np.int16)
    photo[5, 5] = 0  # a speck of dust far from the object
    x = preprocess(np.clip(photo, 0, 255).astype(np.uint8))
    top, bottom, left, right = extent(x)
    assert (top, bottom) == (0, 27) and 5 <= left <= 8 and 19 <= right <= 22


def test_exif_orientation_is_applied():
    a = canvas(40, 60, 255, (0, 0, 8, 60), 0)  # a dark bar along the top edge
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180°: the bar belongs at the bottom
    upright = np.asarray(open_image(encode(Image.fromarray(a), "JPEG", exif=exif, quality=95)))
    assert upright.shape == (40, 60)
    assert upright[-4].mean() < 60 and upright[4].mean() > 200
    exif[0x0112] = 6  # rotated 90°: width and height swap
    assert open_image(encode(Image.fromarray(a), "JPEG", exif=exif)).size == (40, 60)


def test_transparency_is_composited_on_white():
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black...
    rgba[10:40, 20:30] = (20, 20, 20, 255)  # ...around an opaque dark object
    gray = np.asarray(open_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert gray[0, 0] == 255 and gray[25, 25] == 20
    x = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert x[0, 0] == 0 and x[14, 14] > 200


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_format_gives_the_same_picture(fmt):
    photo = Image.fromarray(canvas(90, 120, 240, (15, 30, 60, 40), 30)).convert("RGB")
    reference = load_image(encode(photo, "PNG"))
    x = load_image(encode(photo, fmt, **({"quality": 92} if fmt in ("JPEG", "WEBP") else {})))
    assert x.shape == (28, 28) and x.dtype == np.uint8
    assert np.abs(x.astype(int) - reference).mean() < 6


def test_gif_uses_the_first_frame():
    first = Image.fromarray(canvas(60, 60, 255, (5, 5, 50, 10), 0))  # a tall bar
    second = Image.fromarray(canvas(60, 60, 255, (25, 5, 10, 50), 0))  # a wide bar
    data = encode(first, "GIF", save_all=True, append_images=[second])
    top, bottom, left, right = extent(load_image(data))
    assert bottom - top > right - left


def test_sixteen_bit_png_is_scaled_not_clipped():
    a = canvas(30, 30, 0, (5, 5, 20, 20), 1).astype(np.uint16) * 60000
    gray = np.asarray(open_image(encode(Image.fromarray(a), "PNG")))
    assert gray[0, 0] == 0 and 230 <= gray[15, 15] <= 234


def test_not_an_image_is_refused_by_content_whatever_its_name(tmp_path):
    fake = tmp_path / "shirt.png"
    fake.write_text("this is a text file")
    with pytest.raises(UnsupportedImage, match="shirt.png is not a PNG, JPEG"):
        load_image(fake)
    with pytest.raises(UnsupportedImage, match="the upload is empty; send the bytes of a PNG"):
        load_image(b"")
    with pytest.raises(UnsupportedImage, match="does-not-exist.png"):
        load_image(tmp_path / "does-not-exist.png")


def test_other_formats_are_refused_even_if_pillow_reads_them():
    with pytest.raises(UnsupportedImage, match=r"the upload is not a PNG, JPEG, WebP, BMP or GIF image \(judged by its content\)"):
        load_image(encode(Image.new("RGB", (10, 10)), "TIFF"))


def test_truncated_jpeg_is_damaged():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)), "JPEG")
    with pytest.raises(DamagedImage, match="damaged or truncated"):
        load_image(data[: len(data) // 2], name="half.jpg")


def png_bomb(side: int = 20000) -> bytes:
    """A real 20000×20000 1-bit PNG: about 50 kB of zlib that would decode to 400 megapixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + side // 8)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def gif_bomb(side: int = 65000) -> bytes:
    """A GIF whose screen and single frame claim 65000×65000 pixels in a few dozen bytes."""
    header = b"GIF89a" + struct.pack("<HHBBB", side, side, 0, 0, 0)
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0)
    lzw = b"\x02" + b"\x02\x4c\x01" + b"\x00"  # minimum code size 2, one sub-block: clear, 0, end
    return header + descriptor + lzw + b"\x3b"


@pytest.mark.parametrize("bomb", [png_bomb, gif_bomb])
def test_decompression_bombs_are_refused_before_decoding(bomb):
    with pytest.raises(ImageTooLarge, match=r"the upload has [\d,]+ pixels, more than the 40,000,000 allowed"):
        load_image(bomb())


def test_pixel_limit_is_configurable():
    data = encode(Image.new("L", (100, 100), 255), "PNG")
    with pytest.raises(ImageTooLarge, match="100×100 = 10,000 pixels, more than the 9,999 allowed"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).shape == (28, 28)


def test_size_option_and_png_round_trip():
    x = load_image(encode(Image.fromarray(canvas(50, 50, 0, (10, 10, 30, 30), 255)), "PNG"), Preprocessing(size=32))
    assert x.shape == (32, 32)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(to_png(x)))), x)


def test_bad_options_are_refused():
    with pytest.raises(FashionCNNError, match="invert must be one of auto, always, never, got 'sometimes'"):
        Preprocessing(invert="sometimes")
