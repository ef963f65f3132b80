"""Start, find and stop local engines from the caller's side (kernel, CLI, tests).

One code path starts every engine: a child ``python -m nbchat.engine serve`` in its own
session (a kernel interrupt, which signals the kernel's process group, must not reach
it), its stderr appended to ``engine-<kind>.log`` in the cache dir. Then:

- attached (the default, used in a kernel and by tests): the child's stdin is a pipe
  from this process, so it exits when this process ends, however it ends; it is also
  stopped at interpreter exit;
- detached (``nbchat engine start``): stdin is not tied, the engine outlives the CLI,
  and ``engine-<kind>.json`` in the cache dir records ``{url, pid, model, kind}`` for
  ``nbchat engine stop|status``.

After the child reports its URL, ``/health`` must answer 200, and a chat engine must
render a probe message into its prompt (``/apply-template``): a server whose template
drops the user's text fails here, loudly, instead of answering every request from
three tokens.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbchat.core.errors import ConfigError, NbChatError
from nbchat.engine.gguf import GGUFError, read_gguf_metadata
from nbchat.engine.model import cache_dir, resolve_model
from nbchat.engine.server import DEFAULT_CTX_TOKENS

__all__ = [
    "EngineError",
    "EngineHandle",
    "start_engine",
    "stop_engine",
    "engine_status",
    "engine_url",
    "check_template",
    "log_path_for",
    "state_path_for",
]

KINDS = ("chat", "embeddings")
TEMPLATE_PROBE = "nbchat template probe: the quick brown fox"
_LOG_ROTATE_BYTES = 5 * 1024 * 1024


class EngineError(NbChatError):
    """The local engine could not be started, checked or stopped."""


@dataclass(frozen=True)
class EngineHandle:
    """One running engine. ``pid`` is the engine process (what ``stop`` terminates)."""

    url: str
    pid: int
    model_path: Path
    kind: str
    log_path: Path
    ctx_tokens: int = DEFAULT_CTX_TOKENS
    detached: bool = False
    managed: bool = False
    engine: str = "xllamacpp"
    chat_template: str | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return _pid_is_engine(self.pid)

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        return self.is_running() and _health_status(self.url, timeout_s) == 200

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the engine and wait until its process is gone."""
        if self._process is not None:
            _stop_process(self._process, timeout_s)
        elif _pid_is_engine(self.pid):
            _stop_pid(self.pid, timeout_s)
        _forget(self)

    def as_record(self) -> dict[str, Any]:
        """The JSON-able fields (state file, ``engine_status``)."""
        return {
            "kind": self.kind,
            "url": self.url,
            "pid": self.pid,
            "model": str(self.model_path),
            "ctx_tokens": self.ctx_tokens,
            "log": str(self.log_path),
            "detached": self.detached,
            "engine": self.engine,
            "chat_template": self.chat_template,
        }


# Engines this process started and is tied to, oldest first.
_attached: list[EngineHandle] = []
_atexit_registered = False


def log_path_for(kind: str) -> Path:
    return cache_dir() / f"engine-{kind}.log"


def state_path_for(kind: str) -> Path:
    return cache_dir() / f"engine-{kind}.json"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"Unknown engine kind {kind!r}; use 'chat' or 'embeddings'.")


def start_engine(
    model: str | Path | None = None,
    *,
    embeddings: bool = False,
    ctx_tokens: int = DEFAULT_CTX_TOKENS,
    quiet: bool = True,
    detach: bool = False,
    port: int = 0,
    chat_template: str | None = None,
    template_fix: bool = True,
    reuse: bool = True,
    log_path: str | Path | None = None,
    timeout_s: float = 120.0,
) -> EngineHandle:
    """Start a local llama.cpp server on 127.0.0.1 and return once it answers.

    ``model`` is a GGUF path or a known model's name (``nbchat engine models``); the
    default is SmolLM2-135M-Instruct for chat and gemma-3-270m for embeddings, fetched
    on first use. ``embeddings`` starts the embeddings instance (mean pooling) instead
    of chat; never both on one server. With ``reuse``, an engine of the same kind, model and
    context that is already running (in this process, or recorded by a detached start)
    is returned instead of starting another; one started with other options is replaced
    when this process started it, and refused (naming how to stop it) when a terminal
    did, so that ``engine_status`` always sees every engine ``reuse`` starts.
    ``quiet=False`` prints progress lines on stderr. ``detach`` lets the engine outlive
    this process (the CLI uses it).
    """
    kind = "embeddings" if embeddings else "chat"
    model_path = resolve_model(model, embeddings=embeddings)
    _check_model(model_path)
    if reuse:
        for running in (_find_running(kind), _detached_running(kind)):
            if running is not None and _same_engine(running, model_path, ctx_tokens) \
                    and running.is_healthy():
                if not quiet:
                    _say(f"{kind} engine already running at {running.url} (pid {running.pid}).")
                return running
        _make_way(kind, model_path, ctx_tokens, quiet)

    log = Path(log_path) if log_path else log_path_for(kind)
    command = [
        sys.executable, "-m", "nbchat.engine", "serve",
        "--model", str(model_path),
        "--ctx", str(ctx_tokens),
        "--port", str(port),
    ]  # fmt: skip
    if embeddings:
        command.append("--embeddings")
    if chat_template:
        command += ["--chat-template", chat_template]
    if not template_fix:
        command.append("--no-template-fix")

    if not quiet:
        _say(f"starting the local {kind} engine ({model_path.name}, {ctx_tokens}-token context)...")
    started = time.monotonic()
    log_offset, process = _spawn(command, log, detach)
    try:
        record = _read_announcement(process, log, log_offset, started + timeout_s)
        url = str(record["url"]).rstrip("/")
        _wait_healthy(process, url, log, log_offset, started + timeout_s)
        if not embeddings:
            check_template(url)
    except BaseException:
        _stop_process(process, 5.0)
        raise

    handle = EngineHandle(
        url=url,
        pid=process.pid,
        model_path=model_path,
        kind=kind,
        log_path=log,
        ctx_tokens=ctx_tokens,
        detached=detach,
        engine=str(record.get("engine", "xllamacpp")),
        chat_template=record.get("chat_template"),
        managed=reuse,
        _process=None if detach else process,
    )
    if detach:
        _write_state(handle)
    else:
        _attach(handle)
    if not quiet:
        elapsed_s = time.monotonic() - started
        _say(f"{kind} engine ready at {url} in {elapsed_s:.1f} s (log: {log}).")
    return handle


def stop_engine(kind: str = "chat", timeout_s: float = 10.0) -> bool:
    """Stop the running engine of ``kind``; False when none was running."""
    _check_kind(kind)
    handle = _find_running(kind)
    if handle is None:
        state_path_for(kind).unlink(missing_ok=True)
        return False
    handle.stop(timeout_s)
    return True


def engine_status(kind: str = "chat") -> dict[str, Any]:
    """What is known about the engine of ``kind``: ``running``, ``healthy``, url, pid..."""
    _check_kind(kind)
    handle = _find_running(kind)
    if handle is None:
        return {"kind": kind, "running": False, "healthy": False}
    status = handle.as_record()
    status["running"] = True
    status["healthy"] = _health_status(handle.url, 2.0) == 200
    return status


def engine_url(kind: str = "chat") -> str | None:
    """The URL of a running engine of ``kind`` (this process's, else a detached one)."""
    handle = _find_running(kind)
    return handle.url if handle is not None else None


def check_template(url: str, timeout_s: float = 10.0) -> None:
    """Fail unless the server at ``url`` renders a user message into its prompt."""
    import urllib.error
    import urllib.request

    body = json.dumps({"messages": [{"role": "user", "content": TEMPLATE_PROBE}]}).encode()
    request = urllib.request.Request(
        url + "/apply-template",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _local_opener().open(request, timeout=timeout_s) as response:
            prompt = json.loads(response.read()).get("prompt", "")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return  # an older server without the endpoint: nothing to check
        raise EngineError(
            f"The local engine at {url} failed to render a chat template "
            f"(HTTP {error.code} from /apply-template). Check the model's chat "
            "template, or pass chat_template='gemma' (or another built-in name)."
        ) from None
    except (OSError, ValueError) as error:
        raise EngineError(
            f"The local engine at {url} did not answer the template check ({error})."
        ) from None
    if TEMPLATE_PROBE not in str(prompt):
        shown = str(prompt)[:80]
        raise EngineError(
            f"The local engine at {url} drops the user's text from its prompts: a test "
            f"message renders as {shown!r}. The model would see only those few tokens "
            "on every request, never the conversation. This happens when Jinja is on "
            "and the chat template is a name such as 'gemma' (Jinja takes it as the "
            "template text). Start it with Jinja off and a built-in template "
            "(llama-server: --no-jinja --chat-template gemma), or use a GGUF that "
            "carries its own chat template."
        )


# -- helpers ------------------------------------------------------------------


def _same_engine(handle: EngineHandle, model_path: Path, ctx_tokens: int) -> bool:
    return handle.model_path.resolve() == model_path.resolve() and handle.ctx_tokens == ctx_tokens


def _make_way(kind: str, model_path: Path, ctx_tokens: int, quiet: bool) -> None:
    """Stop this process's engine of ``kind`` that a new start replaces; refuse to start
    beside a detached one (a terminal owns it), which would then run unseen."""
    flag = " --embeddings" if kind == "embeddings" else ""
    detached = _detached_running(kind)
    if detached is not None:
        state = "but does not answer /health" if not detached.is_healthy() else "with other options"
        raise EngineError(
            f"A {kind} engine started from a terminal is already running {state} at "
            f"{detached.url} (pid {detached.pid}, model {detached.model_path.name}, "
            f"{detached.ctx_tokens}-token context). Stop it first with `nbchat engine "
            f"stop{flag}` in a terminal (or `%chat engine stop` in a notebook), or start "
            "with the same options to use it."
        )
    for handle in [h for h in _attached if h.kind == kind and h.managed and h.is_running()]:
        if not quiet:
            _say(
                f"stopping the {kind} engine at {handle.url} (pid {handle.pid}, "
                f"{handle.model_path.name}, {handle.ctx_tokens}-token context) to start "
                f"one with {model_path.name}, {ctx_tokens}-token context."
            )
        handle.stop()


def _say(text: str) -> None:
    print(f"nbchat: {text}", file=sys.stderr, flush=True)


def _check_model(model_path: Path) -> None:
    if not model_path.is_file():
        raise ConfigError(
            f"Model file not found: {model_path}. Give the path of a GGUF file or the "
            "name of a known model (`nbchat engine models`), or leave the model out to "
            "use the default."
        )
    try:
        read_gguf_metadata(model_path, ["general.architecture"])
    except GGUFError as error:
        raise ConfigError(f"Cannot use {model_path} as a model: {error}.") from None
    except OSError as error:
        raise ConfigError(f"Cannot read the model file {model_path}: {error.strerror}.") from None


def _spawn(command: list[str], log: Path, detach: bool) -> tuple[int, subprocess.Popen[bytes]]:
    """Start the child with stderr appended to ``log``; returns the log's start offset."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        if log.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".old"))
    except FileNotFoundError:
        pass
    with open(log, "ab") as log_file:
        log_file.write(
            f"\n--- nbchat engine {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            f"{' '.join(command[1:])}\n".encode()
        )
        log_file.flush()
        offset = log_file.tell()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
    return offset, process


def _log_tail(log: Path, offset: int, max_lines: int = 12) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-max_lines:])


def _failure(what: str, log: Path, offset: int) -> EngineError:
    tail = _log_tail(log, offset)
    message = f"The local engine {what}. Its log is {log}."
    if tail:
        message += "\nLast lines of the log:\n" + tail
    return EngineError(message)


def _read_announcement(
    process: subprocess.Popen[bytes], log: Path, offset: int, deadline: float
) -> dict[str, Any]:
    """The child's JSON line, read with a deadline (it comes once the model is loaded)."""
    assert process.stdout is not None
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _failure("did not start in time", log, offset)
            if selector.select(timeout=min(remaining, 0.5)):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    process.wait(timeout=5)
                    raise _failure(
                        f"stopped while starting (exit code {process.returncode})",
                        log,
                        offset,
                    )
                buffer += chunk
    process.stdout.close()
    line = buffer.split(b"\n", 1)[0]
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or "url" not in record:
            raise ValueError
    except ValueError:
        raise _failure(f"printed an unexpected start line {line[:200]!r}", log, offset) from None
    return record


def _local_opener() -> Any:
    """A urllib opener that ignores proxy settings: the engine is on 127.0.0.1."""
    import urllib.request

    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _health_status(url: str, timeout_s: float) -> int | None:
    import urllib.error

    try:
        with _local_opener().open(url + "/health", timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def _wait_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, offset: int, deadline: float
) -> None:
    while True:
        if process.poll() is not None:
            raise _failure(
                f"stopped while loading the model (exit code {process.returncode})",
                log,
                offset,
            )
        if _health_status(url, 2.0) == 200:
            return
        if time.monotonic() > deadline:
            raise _failure(f"at {url} did not report healthy in time", log, offset)
        time.sleep(0.1)


def _stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        try:
            process.terminate()
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def _pid_is_engine(pid: int) -> bool:
    """True when ``pid`` is alive and, where the OS lets us look, is an nbchat engine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():
        try:
            text = cmdline.read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False  # a zombie: gone, only not yet reaped
        return b"nbchat.engine" in text
    return True


def _stop_pid(pid: int, timeout_s: float) -> None:
    """Stop an engine that is not this process's child (a detached one)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_is_engine(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _write_state(handle: EngineHandle) -> None:
    path = state_path_for(handle.kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(handle.as_record(), indent=2) + "\n")
    os.replace(partial, path)


def _read_state(kind: str) -> EngineHandle | None:
    path = state_path_for(kind)
    try:
        record = json.loads(path.read_text())
        return EngineHandle(
            url=str(record["url"]),
            pid=int(record["pid"]),
            model_path=Path(record["model"]),
            kind=kind,
            log_path=Path(record.get("log") or log_path_for(kind)),
            ctx_tokens=int(record.get("ctx_tokens", DEFAULT_CTX_TOKENS)),
            detached=True,
            managed=True,
            engine=str(record.get("engine", "xllamacpp")),
            chat_template=record.get("chat_template"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or from another version: treat as no engine


def _detached_running(kind: str) -> EngineHandle | None:
    """The engine a terminal started (``nbchat engine start``), when it still runs."""
    detached = _read_state(kind)
    return detached if detached is not None and detached.is_running() else None


def _find_running(kind: str) -> EngineHandle | None:
    """The newest live engine of ``kind`` this process started, else a detached one."""
    for handle in reversed(_attached):
        if handle.kind == kind and handle.is_running():
            return handle
    return _detached_running(kind)


def _attach(handle: EngineHandle) -> None:
    global _atexit_registered
    _attached.append(handle)
    if not _atexit_registered:
        atexit.register(_stop_all_attached)
        _atexit_registered = True


def _forget(handle: EngineHandle) -> None:
    if handle in _attached:
        _attached.remove(handle)
    if handle.detached:
        current = _read_state(handle.kind)
        if current is not None and current.pid == handle.pid:
            state_path_for(handle.kind).unlink(missing_ok=True)


def _stop_all_attached() -> None:
    for handle in list(_attached):
        try:
            handle.stop(timeout_s=5.0)
        except Exception:  # at exit, one failure must not keep the others running
            pass
