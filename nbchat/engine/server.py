"""The engine's own process: one llama.cpp server, run by ``python -m nbchat.engine serve``.

The server never runs inside the caller (a Jupyter kernel stays light and restartable,
a crash cannot take the kernel down, and a test can kill the server mid-stream). This
module is that child process. It starts llama.cpp's HTTP server, prints one JSON line
``{"url": ..., "pid": ..., "engine": ..., "chat_template": ...}`` on stdout once it
listens, then waits until SIGTERM/SIGINT, or until its stdin closes when stdin is a
pipe (so an engine tied to a kernel dies with it).

Two ways to run llama.cpp, same HTTP API:

- a ``llama-server`` binary from ``NBCHAT_LLAMA_SERVER`` or PATH (a user's GPU build),
  preferred when present, run as a grandchild that dies with this process;
- otherwise the ``xllamacpp`` wheel, llama.cpp's server compiled into a Python module,
  run in this process.

The chat-template trap: with Jinja on (llama.cpp's default), ``--chat-template gemma``
makes the template the literal word "gemma", and every request is evaluated as three
tokens without the conversation. A model that carries no template of its own (the
default gemma base model) is therefore started with Jinja off and the built-in
``gemma`` template.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbchat.core.errors import ConfigError
from nbchat.engine.gguf import gguf_chat_template

__all__ = [
    "ServeOptions",
    "TemplateChoice",
    "choose_template",
    "find_llama_server",
    "llama_server_command",
    "add_serve_arguments",
    "options_from_args",
    "serve",
]

HOST = "127.0.0.1"
DEFAULT_CTX_TOKENS = 8192
BUILTIN_TEMPLATE = "gemma"


@dataclass(frozen=True)
class ServeOptions:
    """What to serve. ``port`` 0 picks a free port."""

    model_path: Path
    embeddings: bool = False
    ctx_tokens: int = DEFAULT_CTX_TOKENS
    port: int = 0
    chat_template: str | None = None
    template_fix: bool = True


@dataclass(frozen=True)
class TemplateChoice:
    """How the server renders chat messages; None leaves llama.cpp's default."""

    use_jinja: bool | None = None
    chat_template: str | None = None

    def describe(self) -> str:
        if self.chat_template is None:
            return "default"
        mode = "Jinja off" if self.use_jinja is False else "Jinja on"
        return f"{self.chat_template} ({mode})"


def choose_template(options: ServeOptions, model_template: str | None) -> TemplateChoice:
    """Pick the template settings that make the server render the user's text.

    With ``template_fix`` (the default) a given template name, or ``gemma`` for a model
    without its own template, is used with Jinja off; a model with a template keeps
    it. Without ``template_fix`` the name is passed as it is, which reproduces
    llama.cpp's default behaviour, trap included.
    """
    if options.embeddings:
        return TemplateChoice()
    if not options.template_fix:
        return TemplateChoice(chat_template=options.chat_template)
    if options.chat_template:
        return TemplateChoice(use_jinja=False, chat_template=options.chat_template)
    if model_template is None:
        return TemplateChoice(use_jinja=False, chat_template=BUILTIN_TEMPLATE)
    return TemplateChoice()


def find_llama_server() -> str | None:
    """The ``llama-server`` binary to prefer over the wheel, or None.

    ``NBCHAT_LLAMA_SERVER`` wins over PATH; a value that is not an executable file is
    a configuration error rather than a silent fallback.
    """
    configured = os.environ.get("NBCHAT_LLAMA_SERVER")
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(
                f"NBCHAT_LLAMA_SERVER is set to {configured}, which is not an executable "
                "file. Point it at a llama-server binary, or unset it to use the "
                "bundled engine."
            )
        return str(path)
    return shutil.which("llama-server")


def llama_server_command(
    binary: str, options: ServeOptions, port: int, template: TemplateChoice
) -> list[str]:
    """The command line that runs ``binary`` like the wheel would be configured."""
    command = [
        binary,
        "--host", HOST,
        "--port", str(port),
        "-m", str(options.model_path),
        "-c", str(options.ctx_tokens),
        "-np", "1",
        "--swa-full",
    ]  # fmt: skip
    if template.use_jinja is False:
        command.append("--no-jinja")
    elif template.use_jinja is True:
        command.append("--jinja")
    if template.chat_template is not None:
        command += ["--chat-template", template.chat_template]
    if options.embeddings:
        command += ["--embeddings", "--pooling", "mean"]
    return command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook giving the grandchild SIGKILL when this wrapper dies (Linux).

    Built before forking: the hook itself only calls into an already-loaded libc.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return hook


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:
        return False


def _announce(record: dict[str, Any]) -> None:
    """Print the JSON line, then send any later stdout writes to the log (stderr).

    The parent stops reading stdout after this line; a later write into the closed
    pipe must not kill the server.
    """
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    os.dup2(2, 1)


def _install_stop_triggers(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)

    if _stdin_is_pipe():

        def watch_stdin() -> None:
            # os.read on the raw fd: a daemon thread blocked in sys.stdin's buffered
            # reader would hold its lock and abort the interpreter at exit.
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()


def _serve_binary(
    binary: str, options: ServeOptions, template: TemplateChoice, stop: threading.Event
) -> int:
    port = options.port or _free_port()
    command = llama_server_command(binary, options, port, template)
    print("nbchat engine: running " + " ".join(command), file=sys.stderr, flush=True)
    server = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),
        stderr=sys.stderr.fileno(),
        preexec_fn=_die_with_parent_hook(),
    )
    _install_stop_triggers(stop)
    # Announce only once the port accepts connections; the parent then waits for
    # /health, which answers 503 while the model loads.
    while not stop.is_set() and server.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                break
        except OSError:
            stop.wait(0.1)
    if server.poll() is None and not stop.is_set():
        _announce(
            {
                "url": f"http://{HOST}:{port}",
                "pid": os.getpid(),
                "engine": "llama-server",
                "binary": binary,
                "chat_template": template.describe(),
            }
        )
    while not stop.wait(0.2):
        if server.poll() is not None:
            break
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    code = server.returncode
    return 0 if stop.is_set() else (code or 1)


def _serve_wheel(options: ServeOptions, template: TemplateChoice, stop: threading.Event) -> int:
    try:
        import xllamacpp  # type: ignore[import-untyped]
    except ImportError:
        print(
            "nbchat engine: the local engine needs the xllamacpp package: "
            "pip install 'nbchat[local]' (or set NBCHAT_LLAMA_SERVER to a llama-server).",
            file=sys.stderr,
            flush=True,
        )
        return 3
    params = xllamacpp.CommonParams()
    params.model.path = str(options.model_path)
    params.n_ctx = options.ctx_tokens
    params.n_parallel = 1
    params.hostnames = [HOST]
    params.port = options.port
    params.ui = False
    # Keep the full KV cache of sliding-window layers (gemma 3 has them): without it,
    # llama.cpp cannot reuse a cached prefix past its last checkpoint and re-evaluates
    # most of every turn (measured: turn 2 evaluated 47 of 65 tokens; with it, 13).
    params.swa_full = True
    if template.use_jinja is not None:
        params.use_jinja = template.use_jinja
    if template.chat_template is not None:
        params.chat_template = template.chat_template
    if options.embeddings:
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    _install_stop_triggers(stop)
    try:
        server = xllamacpp.Server(params)
    except Exception as error:  # the extension reports load failures this way
        print(f"nbchat engine: the server did not start: {error}", file=sys.stderr)
        return 1
    if not stop.is_set():
        _announce(
            {
                "url": server.listening_address,
                "pid": os.getpid(),
                "engine": "xllamacpp",
                "chat_template": template.describe(),
            }
        )
    stop.wait()
    del server  # joins the server's threads and frees the model
    return 0


def serve(options: ServeOptions) -> int:
    """Run one server until told to stop; returns the process exit code."""
    try:
        model_template = None if options.embeddings else gguf_chat_template(options.model_path)
        binary = find_llama_server()
    except (OSError, ValueError, ConfigError) as error:
        print(f"nbchat engine: {error}", file=sys.stderr, flush=True)
        return 2
    template = choose_template(options, model_template)
    stop = threading.Event()
    if binary:
        return _serve_binary(binary, options, template, stop)
    return _serve_wheel(options, template, stop)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve`` (shared by ``python -m nbchat.engine`` and ``nbchat``)."""
    parser.add_argument("--model", required=True, help="path of the GGUF model file")
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="serve /v1/embeddings (mean pooling) instead of chat",
    )
    parser.add_argument(
        "--ctx",
        type=int,
        default=DEFAULT_CTX_TOKENS,
        help="context window in tokens (default %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--chat-template",
        default=None,
        help="llama.cpp built-in template name (default: the model's own, else gemma)",
    )
    parser.add_argument(
        "--no-template-fix",
        action="store_true",
        help="keep llama.cpp's Jinja default and pass --chat-template as template text",
    )


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        model_path=Path(args.model).expanduser(),
        embeddings=args.embeddings,
        ctx_tokens=args.ctx,
        port=args.port,
        chat_template=args.chat_template,
        template_fix=not args.no_template_fix,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nbchat.engine",
        description="Run one llama.cpp server in the foreground (used by `nbchat engine start`).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve one model until SIGTERM/SIGINT, or until stdin closes when it is a pipe",
    )
    add_serve_arguments(serve_parser)
    args = parser.parse_args(argv)
    return serve(options_from_args(args))
