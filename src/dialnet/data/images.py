"""Images: resampling, single image files, and folders with one sub-folder per class.

Resizing is a pair of small matrices: ``out = R_rows @ img @ R_cols.T``.
Shrinking (28 -> 25) uses area averaging, each output pixel the mean of
the input area it covers (fractional overlaps weighted exactly); growing
uses bilinear interpolation. Either way a whole batch is resized in one
``einsum`` with no loop over images.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import ConfigError, DataError

# the largest image (width x height) decoded; read from the file's header before any pixel is decoded.
# 4096 x 4096: far above what a 25..512-pixel network input needs; DIALNET_MAX_IMAGE_PIXELS raises or lowers it.
MAX_IMAGE_PIXELS = 4096 * 4096
ENV_MAX_PIXELS = "DIALNET_MAX_IMAGE_PIXELS"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
MIN_SIZE, MAX_SIZE = 4, 512


def check_image_size(size) -> int:
    """Validate ``--image-size``: a whole number of pixels per side."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError("the image size must be a whole number of pixels per side",
                          expected=f"an int from {MIN_SIZE} to {MAX_SIZE}", got=repr(size),
                          fix="e.g. --image-size 25 (the articles' 25x25 = 625 inputs)")
    return int(size)


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix that resamples one axis.

    Shrinking: row ``i`` averages the input interval ``[i s, (i+1) s)``
    with ``s = n_in / n_out``, each input pixel weighted by its overlap.
    Growing: bilinear weights at pixel centres (half-pixel convention).
    Each row sums to 1, so a constant image stays constant.
    """
    R = np.zeros((n_out, n_in), dtype=np.float64)
    if n_out <= n_in:
        scale = n_in / n_out
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                R[i, j] = min(hi, j + 1) - max(lo, j)
    else:
        centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        left = np.floor(centres).astype(int)
        right = np.minimum(left + 1, n_in - 1)
        frac = centres - left
        R[np.arange(n_out), left] += 1 - frac
        R[np.arange(n_out), right] += frac
    return R / R.sum(axis=1, keepdims=True)


def resize_images(images, size: int) -> np.ndarray:
    """Resize a batch ``(n, h, w)`` to ``(n, size, size)`` (float32, same value range)."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise DataError("images must be a batch of 2-D pictures", expected="shape (n, height, width)",
                        got=f"shape {images.shape}", fix="stack the images into one (n, h, w) array")
    n, h, w = images.shape
    if (h, w) == (size, size):
        return images.astype(np.float32)
    Rr = resample_matrix(h, size).astype(np.float32)
    Rc = resample_matrix(w, size).astype(np.float32)
    out = np.empty((n, size, size), dtype=np.float32)
    step = 4096  # bounded temporaries for big sets
    for i in range(0, n, step):
        out[i : i + step] = np.einsum("ij,njk,lk->nil", Rr, images[i : i + step].astype(np.float32), Rc, optimize=True)
    return out


def max_image_pixels() -> int:
    """The largest image decoded, in pixels: ``MAX_IMAGE_PIXELS``, or ``$DIALNET_MAX_IMAGE_PIXELS`` when set."""
    text = os.environ.get(ENV_MAX_PIXELS)
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{ENV_MAX_PIXELS} is not a pixel count", expected="a whole number >= 1, e.g. 50000000",
                          got=repr(text), fix=f"set {ENV_MAX_PIXELS} to a number of pixels, or unset it")
    return value


def _pil():
    try:
        from PIL import Image  # noqa: PLC0415  (optional, heavy)
    except ImportError:
        raise ConfigError("reading image files needs Pillow", expected="an importable PIL package",
                          got="no Pillow installed", fix='pip install "dialnet[images]" (or pip install pillow)') from None
    return Image


def _grayscale(img, Image):
    """Any PIL image -> float32 grayscale in [0, 1].

    16/32-bit and float images are divided by their type's full scale
    (not clipped at 255); transparent pixels (RGBA, LA, palette with
    transparency) are laid over white, as a viewer shows them.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.float32) / 65535.0
    if img.mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if a.max(initial=0.0) > 255.0 else 255.0
        if img.mode == "F" and a.max(initial=0.0) <= 1.0:
            top = 1.0
        return np.clip(a / top, 0.0, 1.0).astype(np.float32)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def load_image(path, size: int) -> np.ndarray:
    """One image file as a ``(size, size)`` float32 array of grayscale values in [0, 1].

    Any mode Pillow reads (RGB, RGBA, palette, 16-bit, CMYK, ...) is made
    grayscale (:func:`_grayscale`), turned upright by its EXIF tag, then
    resized: box filter when shrinking, bilinear when growing.
    Non-square images are squashed.
    """
    Image = _pil()
    from PIL import ImageOps  # noqa: PLC0415

    spath = os.fspath(path)
    if not os.path.isfile(spath):
        raise DataError(f"image file {spath} does not exist", expected="an image file (png, jpg, ...)", got=spath,
                        fix="check the path")
    limit = max_image_pixels()
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below says it clearly
            Image.MAX_IMAGE_PIXELS = max(limit, pillow_limit or 0)  # Pillow's bomb check must not override ours
            with Image.open(spath) as img:  # reads the header only: the size is known before any pixel is decoded
                width, height = img.size
                if width * height > limit:
                    raise DataError(f"image {spath} is too large to read: {width}x{height} pixels",
                                    expected=f"at most {limit:,} pixels (width x height)", got=f"{width * height:,} pixels",
                                    fix=f"shrink the image first, or raise the limit with {ENV_MAX_PIXELS}={width * height}")
                img.load()
            img = ImageOps.exif_transpose(img) or img
            gray = _grayscale(img, Image)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read {spath} as an image", expected="a png, jpg, bmp, gif or tiff file",
                        got=str(exc)[:120] or type(exc).__name__,
                        fix="check that the file is an image and not damaged, or move it out of the folder") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    h, w = gray.shape
    resample = Image.Resampling.BOX if h >= size and w >= size else Image.Resampling.BILINEAR
    resized = Image.fromarray(gray, "F").resize((size, size), resample=resample)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def load_image_folder(folder, size: int = 25, notes=None):
    """A folder with one sub-folder per class, each holding image files.

    Returns ``(X, y, class_names, files)``: ``X`` of shape (n, size*size)
    with values in [0, 1], ``y`` int64 labels, the class names (the
    sub-folder names, sorted) and the file paths in the order of ``X``.
    Files without an image extension are skipped; a line saying how many
    is appended to ``notes`` (a list) when given.
    """
    size = check_image_size(size)
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise DataError(f"image folder {root} does not exist", expected="a folder with one sub-folder per class",
                        got=root, fix="check the path")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    found, skipped = {}, []
    for name in classes:
        sub = os.path.join(root, name)
        entries = sorted(f for f in os.listdir(sub) if not f.startswith(".") and os.path.isfile(os.path.join(sub, f)))
        files = [f for f in entries if f.lower().endswith(IMAGE_EXTENSIONS)]
        skipped += [os.path.join(name, f) for f in entries if not f.lower().endswith(IMAGE_EXTENSIONS)]
        if files:
            found[name] = [os.path.join(sub, f) for f in files]
    if skipped and notes is not None:
        notes.append(f"skipped {len(skipped):,} non-image file(s), e.g. {skipped[0]}")
    if len(found) < 2:
        raise DataError(f"image folder {root} needs at least 2 classes",
                        expected="one sub-folder of images per class, at least 2 with images (e.g. cats/, dogs/)",
                        got=f"{len(found)} sub-folder(s) with images" + (f": {', '.join(found)}" if found else ""),
                        fix="put each class's images in its own sub-folder")
    names = list(found)
    paths = [p for name in names for p in found[name]]
    y = np.array([i for i, name in enumerate(names) for _ in found[name]], dtype=np.int64)
    X = np.stack([load_image(p, size).reshape(-1) for p in paths])
    return X, y, names, paths
