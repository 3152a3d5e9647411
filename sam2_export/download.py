"""Official SAM 2 / SAM 2.1 checkpoints by name: downloaded once into a cache, resumable, size-verified.

    path = download_checkpoint(resolve_model_name("sam2.1_hiera_t"))   # ~/.cache/sam2-trt/checkpoints/...

The bytes arrive in `NAME.pt.part` beside the final file; a broken or interrupted download leaves the `.part`
behind and the next call resumes it with an HTTP Range request. The `.part` becomes `NAME.pt` (one rename)
only once its size equals the size the server announced, so a file with the final name is always complete.
urllib only: the export extra should not need `requests` for one GET.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .configs import ModelName, resolve_model_name
from .errors import ExportError

# The official README's links: SAM 2.1 checkpoints under 092824/, SAM 2 under 072824/.
DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
RELEASE_DIRS = {"sam2.1": "092824", "sam2": "072824"}
BASE_URL_ENV = "SAM2_TRT_CHECKPOINT_BASE_URL"  # a mirror with the same layout (tests point it at 127.0.0.1)
CONNECT_TIMEOUT_S = 10.0  # urllib applies it to the connection and to every read of the body
CHUNK = 1 << 20


class CheckpointDownloadError(ExportError):
    """The checkpoint could not be fetched (offline, HTTP error, truncated or inconsistent transfer)."""


def cache_root() -> Path:
    """$SAM2_TRT_CACHE, else $XDG_CACHE_HOME/sam2-trt, else ~/.cache/sam2-trt (shared with the kernel cache)."""
    root = os.environ.get("SAM2_TRT_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sam2-trt"


def checkpoint_dir() -> Path:
    return cache_root() / "checkpoints"


def checkpoint_url(model: ModelName) -> str:
    base = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{RELEASE_DIRS[model.family]}/{model.long}.pt"


def official_model_named(text: str) -> ModelName | None:
    """The official model `text` names (sam2.1_hiera_tiny, sam2.1_hiera_t, ...), or None if it names none."""
    try:
        return resolve_model_name(text)
    except ExportError:
        return None


def resolve_checkpoint(checkpoint: str, config: str, log=print) -> str:
    """`--checkpoint` as given: an existing file wins; else an official model name is downloaded (into the cache,
    once) and its path returned; anything else is returned unchanged for the loader to report as not found."""
    if Path(checkpoint).is_file():
        return checkpoint
    model = official_model_named(checkpoint)
    if model is None:
        return checkpoint
    wanted = resolve_model_name(config)
    if model != wanted:
        raise ExportError(f"--checkpoint {checkpoint} names the official {model.short} checkpoint, but --config is "
                          f"{wanted.short}; pass --checkpoint {wanted.long} (or a file) to match the config")
    return str(download_checkpoint(model, log=log))


def download_checkpoint(model: ModelName, cache_dir=None, progress: bool = True, log=print) -> Path:
    """The official checkpoint of `model`: the cached file if present (no network), else downloaded.

    Raises CheckpointDownloadError when the server cannot be reached, answers with an HTTP error, or sends a
    different number of bytes than it announced. Ctrl-C keeps the `.part` for the next call to resume.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else checkpoint_dir()
    final = cache_dir / f"{model.long}.pt"
    if final.is_file():
        return final
    url = checkpoint_url(model)
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    log(f"downloading the official {model.short} checkpoint from {url}\n  to {final}")
    try:
        total = _fetch(url, part, progress, model, final)
    except KeyboardInterrupt:
        if part.exists():
            log(f"download interrupted; {part} ({part.stat().st_size} bytes) is kept and resumed by the next run")
        raise
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            part.unlink()  # more than the whole file: not a prefix of it, so not resumable
        raise _error(model, url, final, f"received {size} bytes but the server announced {total}"
                     + ("" if size > total else f"; run again to resume from {part}"))
    os.replace(part, final)
    return final


def _fetch(url: str, part: Path, progress: bool, model: ModelName, final: Path, retried: bool = False) -> int | None:
    """Append the rest of `url` to `part`; returns the total size the server announced (None if it did not)."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "sam2-trt"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset and not retried:  # the .part is already whole, or longer than the file
            total = _content_range_total(e.headers.get("Content-Range"))
            e.close()
            if total == offset:
                return total
            part.unlink()
            return _fetch(url, part, progress, model, final, retried=True)
        raise _error(model, url, final, f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:  # refused, no DNS, timeout (socket.timeout is an OSError)
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise _error(model, url, final, f"{reason}") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _error(model, url, final, f"asked for bytes from {offset}, the server sent from {start}")
            mode = "ab"
        else:  # 200: the server ignored the Range header, so the whole file comes again
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            offset, mode = 0, "wb"
        from tqdm import tqdm

        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                                         desc=final.name, file=sys.stderr, disable=not progress) as bar:
            try:
                while block := response.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:
                f.flush()
                raise _error(model, url, final, f"the connection broke after {f.tell()} bytes ({e}); run again to "
                             f"resume from {part}") from None
    return total


def _content_range(header: str | None) -> tuple[int, int | None]:
    """'bytes 100-999/1000' -> (100, 1000); the total may be '*' (unknown)."""
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (header or "").strip())
    if not m:
        raise CheckpointDownloadError(f"the server answered a range request with Content-Range {header!r}")
    return int(m.group(1)), None if m.group(2) == "*" else int(m.group(2))


def _content_range_total(header: str | None) -> int | None:
    m = re.fullmatch(r"bytes \*/(\d+)", (header or "").strip())
    return int(m.group(1)) if m else None


def _error(model: ModelName, url: str, final: Path, reason: str) -> CheckpointDownloadError:
    return CheckpointDownloadError(
        f"could not download the {model.short} checkpoint from {url}: {reason}. Offline? Download "
        f"{model.long}.pt on a machine with network access and pass --checkpoint PATH (or copy it to {final}), "
        f"or use --random-weights to try the pipeline without it")

