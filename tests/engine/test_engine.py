"""The local engine: real llama.cpp servers from the xllamacpp wheel, real processes."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbchat.core.errors import ConfigError
from nbchat.engine import (
    EngineError,
    EngineHandle,
    default_model_path,
    embedding_model_path,
    engine_status,
    engine_url,
    start_engine,
)
from nbchat.engine.gguf import GGUFError, gguf_chat_template, read_gguf_metadata
from nbchat.engine.server import (
    ServeOptions,
    TemplateChoice,
    choose_template,
    find_llama_server,
    llama_server_command,
)

# -- helpers ------------------------------------------------------------------


def pid_is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def wait_until_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_is_gone(pid):
            return True
        time.sleep(0.05)
    return pid_is_gone(pid)


def engine_children() -> set[int]:
    """Live engine processes whose parent is this test process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and b"nbchat.engine" in cmdline:
            found.add(int(entry.name))
    return found


def post(url: str, path: str, body: dict[str, Any], timeout_s: float = 120.0) -> Any:
    response = httpx.post(url + path, json=body, timeout=timeout_s)
    response.raise_for_status()
    return response.json()


def stream_chat(
    url: str, messages: list[dict[str, str]], max_tokens: int = 8
) -> tuple[str, dict[str, Any]]:
    """Stream one chat completion; returns the answer and the server's ``timings``."""
    body = {
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "cache_prompt": True,
    }
    text, timings = "", {}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            for choice in chunk.get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
            timings = chunk.get("timings", timings)
    return text, timings


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbchat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def write_gguf(
    path: Path, entries: list[tuple[str, int, Any]], *, endian: str = "<", version: int = 3
) -> None:
    """Write a GGUF header with ``(key, type, value)`` entries and no tensors."""
    count = "I" if version == 1 else "Q"

    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack(endian + count, len(data)) + data

    def scalar(value_type: int, value: Any) -> bytes:
        if value_type == 8:
            return string(value)
        fmt = {4: "I", 5: "i", 6: "f", 7: "?", 10: "Q"}[value_type]
        return struct.pack(endian + fmt, value)

    out = b"GGUF" + struct.pack(endian + "I", version)
    out += struct.pack(endian + count, 0) + struct.pack(endian + count, len(entries))
    for key, value_type, value in entries:
        out += string(key) + struct.pack(endian + "I", value_type)
        if value_type == 9:
            element_type, items = value
            out += struct.pack(endian + "I", element_type)
            out += struct.pack(endian + count, len(items))
            out += b"".join(scalar(element_type, item) for item in items)
        else:
            out += scalar(value_type, value)
    path.write_bytes(out)


TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
ENTRIES = [
    ("general.architecture", 8, "gemma3"),
    ("gemma3.context_length", 4, 32768),
    ("tokenizer.ggml.tokens", 9, (8, ["<pad>", "<eos>", "hello", "wörld"])),
    ("tokenizer.ggml.scores", 9, (6, [0.0, -1.5, -2.0, -3.0])),
    ("tokenizer.ggml.add_bos_token", 7, True),
    ("tokenizer.chat_template", 8, TEMPLATE),
]


# -- the GGUF header ------------------------------------------------------------


@pytest.mark.parametrize(("endian", "version"), [("<", 3), (">", 3), ("<", 1)])
def test_gguf_reader_finds_the_template_after_skipping_arrays(
    tmp_path: Path, endian: str, version: int
) -> None:
    path = tmp_path / "model.gguf"
    write_gguf(path, ENTRIES, endian=endian, version=version)
    assert gguf_chat_template(path) == TEMPLATE
    metadata = read_gguf_metadata(path)
    assert metadata["tokenizer.ggml.tokens"] == ["<pad>", "<eos>", "hello", "wörld"]
    assert metadata["gemma3.context_length"] == 32768


def test_gguf_reader_says_none_when_the_model_has_no_template(tmp_path: Path) -> None:
    path = tmp_path / "base.gguf"
    write_gguf(path, [e for e in ENTRIES if e[0] != "tokenizer.chat_template"])
    assert gguf_chat_template(path) is None


def test_the_embeddings_model_carries_no_chat_template(embedding_gguf_path: Path) -> None:
    assert read_gguf_metadata(embedding_gguf_path, ["general.architecture"]) == {
        "general.architecture": "gemma3"
    }
    assert gguf_chat_template(embedding_gguf_path) is None


def test_gguf_reader_rejects_a_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    write_gguf(path, ENTRIES)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(GGUFError, match="truncated"):
        gguf_chat_template(path)


def test_gguf_reader_rejects_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes")
    with pytest.raises(GGUFError, match="not a GGUF"):
        gguf_chat_template(path)


# -- the default model ------------------------------------------------------------


def test_the_embeddings_model_is_assembled_once_then_reused_and_rebuilt_when_corrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBCHAT_CACHE_DIR", str(tmp_path / "cache"))
    path = embedding_model_path()
    assert path == tmp_path / "cache" / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert path.stat().st_size == 253_113_024
    assert "preparing the model gemma-3-270m" in capsys.readouterr().err

    import nbchat.engine.model as model_module

    hashed: list[Path] = []
    sha256_of = model_module._sha256_of
    monkeypatch.setattr(model_module, "_sha256_of", lambda p: hashed.append(p) or sha256_of(p))
    assert embedding_model_path() == path
    assert hashed == []  # the stamp, not a re-hash
    assert capsys.readouterr().err == ""

    with path.open("r+b") as handle:
        handle.seek(10_000_000)
        handle.write(b"\xff" * 16)
    assert embedding_model_path() == path
    assert hashed[0] == path  # the stamp no longer matched: a hash found the damage
    assert "preparing the model gemma-3-270m" in capsys.readouterr().err
    with path.open("rb") as handle:
        handle.seek(10_000_000)
        assert handle.read(16) != b"\xff" * 16
    assert not list(path.parent.glob("*.part"))


# -- choosing the template and the command line -----------------------------------


def test_a_model_without_template_gets_builtin_gemma_with_jinja_off() -> None:
    options = ServeOptions(model_path=Path("m.gguf"))
    assert choose_template(options, None) == TemplateChoice(False, "gemma")


def test_a_model_with_its_own_template_keeps_it() -> None:
    options = ServeOptions(model_path=Path("m.gguf"))
    assert choose_template(options, TEMPLATE) == TemplateChoice(None, None)


def test_a_named_template_is_used_with_jinja_off() -> None:
    options = ServeOptions(model_path=Path("m.gguf"), chat_template="chatml")
    assert choose_template(options, TEMPLATE) == TemplateChoice(False, "chatml")


def test_without_the_fix_the_name_reaches_the_server_as_is() -> None:
    options = ServeOptions(model_path=Path("m.gguf"), chat_template="gemma", template_fix=False)
    assert choose_template(options, None) == TemplateChoice(None, "gemma")


def test_an_embeddings_server_gets_no_template_settings() -> None:
    options = ServeOptions(model_path=Path("m.gguf"), embeddings=True)
    assert choose_template(options, None) == TemplateChoice(None, None)


def test_llama_server_command_for_a_model_without_template() -> None:
    options = ServeOptions(model_path=Path("/models/m.gguf"), ctx_tokens=4096)
    command = llama_server_command(
        "/bin/llama-server", options, 9001, TemplateChoice(False, "gemma")
    )
    assert command == [
        "/bin/llama-server",
        "--host", "127.0.0.1",
        "--port", "9001",
        "-m", "/models/m.gguf",
        "-c", "4096",
        "-np", "1",
        "--swa-full",
        "--no-jinja",
        "--chat-template", "gemma",
    ]  # fmt: skip


def test_llama_server_command_for_embeddings() -> None:
    options = ServeOptions(model_path=Path("/models/m.gguf"), embeddings=True)
    command = llama_server_command("llama-server", options, 9002, TemplateChoice())
    assert command[-3:] == ["--embeddings", "--pooling", "mean"]
    assert "--chat-template" not in command and "--no-jinja" not in command
    assert command[command.index("-c") + 1] == "8192"


def test_llama_server_comes_from_the_environment_before_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = tmp_path / "bin" / "llama-server"
    configured = tmp_path / "gpu" / "llama-server"
    for binary in (on_path, configured):
        binary.parent.mkdir()
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.delenv("NBCHAT_LLAMA_SERVER", raising=False)
    assert find_llama_server() == str(on_path)
    monkeypatch.setenv("NBCHAT_LLAMA_SERVER", str(configured))
    assert find_llama_server() == str(configured)
    monkeypatch.setenv("NBCHAT_LLAMA_SERVER", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="NBCHAT_LLAMA_SERVER"):
        find_llama_server()


def test_no_llama_server_means_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NBCHAT_LLAMA_SERVER", raising=False)
    assert find_llama_server() is None


# -- the real server -----------------------------------------------------------------


def test_the_engine_answers_health(llama_url: str) -> None:
    response = httpx.get(llama_url + "/health", timeout=10)
    assert response.status_code == 200
    assert llama_url.startswith("http://127.0.0.1:")


def test_the_default_model_renders_the_users_text_inside_chatml_turns(llama_url: str) -> None:
    messages = [{"role": "user", "content": "What is in this spreadsheet?"}]
    prompt = post(llama_url, "/apply-template", {"messages": messages})["prompt"]
    assert prompt.endswith(
        "<|im_start|>user\nWhat is in this spreadsheet?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_the_default_chat_model_is_the_pinned_smollm2(gguf_path: Path) -> None:
    assert gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf_path.stat().st_size == 98_362_432
    assert gguf_chat_template(gguf_path) is not None  # ChatML, its own: Jinja stays on


@pytest.mark.server
def test_the_engine_starts_a_model_by_name_and_the_probe_shows_chatml(
    gguf_path: Path, tmp_path: Path
) -> None:
    handle = start_engine(
        "smollm2-135m-instruct", reuse=False, log_path=tmp_path / "named.log"
    )
    try:
        assert handle.model_path.resolve() == gguf_path.resolve()
        messages = [{"role": "user", "content": "hello"}]
        prompt = post(handle.url, "/apply-template", {"messages": messages})["prompt"]
        assert "<|im_start|>user\nhello<|im_end|>" in prompt
    finally:
        handle.stop()


def test_a_long_first_turn_is_evaluated_and_the_second_reuses_it(llama_url: str) -> None:
    attachment = "\n".join(
        f"Row {n}: sensor {n % 17} in room {n % 9} read {20 + n % 7}.{n % 10} degrees "
        f"at {8 + n % 10}:{n % 60:02d}, status {'ok' if n % 5 else 'check'}."
        for n in range(100)
    )
    tokens = post(llama_url, "/tokenize", {"content": attachment})["tokens"]
    assert 2_800 < len(tokens) < 4_000
    first = [
        {
            "role": "user",
            "content": f"[Attached: sensors.txt]\n{attachment}\n\nWhich room is warmest?",
        }
    ]
    answer, timings = stream_chat(llama_url, first)
    assert timings["prompt_n"] > 2_000

    second = first + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And the coldest?"},
    ]
    _, timings = stream_chat(llama_url, second)
    assert timings["cache_n"] > 2_000
    assert timings["prompt_n"] < 50


def test_the_embeddings_server_returns_640_dimensional_vectors(embedding_url: str) -> None:
    body = {"input": ["a cat on a mat", "quarterly revenue grew by 4 percent"]}
    data = post(embedding_url, "/v1/embeddings", body)["data"]
    vectors = [item["embedding"] for item in data]
    assert [len(v) for v in vectors] == [640, 640]
    assert vectors[0] != vectors[1]


@pytest.mark.server
def test_the_template_trap_is_caught_at_start(gguf_path: Path, tmp_path: Path) -> None:
    before = engine_children()
    log = tmp_path / "trap.log"
    with pytest.raises(EngineError) as caught:
        start_engine(
            gguf_path, chat_template="gemma", template_fix=False, reuse=False, log_path=log
        )
    message = str(caught.value)
    assert "drops the user's text" in message
    assert "--no-jinja --chat-template gemma" in message
    assert "Traceback" not in message
    assert engine_children() <= before  # the misconfigured server was stopped


@pytest.mark.server
def test_a_model_the_server_cannot_load_fails_fast_naming_the_log(
    gguf_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    with gguf_path.open("rb") as source:
        broken.write_bytes(source.read(8_000_000))  # header intact, tensors cut off
    log = tmp_path / "broken.log"
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        start_engine(broken, reuse=False, log_path=log, timeout_s=60)
    assert time.monotonic() - started < 30
    assert str(log) in str(caught.value)
    assert "stopped" in str(caught.value)


def test_a_missing_model_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.gguf"):
        start_engine(tmp_path / "missing.gguf")


def test_stopping_the_engine_leaves_no_process(own_llama: EngineHandle) -> None:
    assert own_llama.pid in engine_children()
    own_llama.stop()
    assert pid_is_gone(own_llama.pid)
    assert own_llama.pid not in engine_children()
    assert not own_llama.is_running()


def test_status_url_and_reuse_point_at_the_running_engine(
    own_llama: EngineHandle, gguf_path: Path, tmp_path: Path
) -> None:
    assert engine_url("chat") == own_llama.url
    status = engine_status("chat")
    assert (status["running"], status["healthy"], status["pid"]) == (True, True, own_llama.pid)
    assert status["chat_template"] == "default"  # SmolLM2 carries its ChatML template
    again = start_engine(gguf_path, log_path=tmp_path / "again.log")
    assert again.pid == own_llama.pid
    own_llama.stop()
    assert engine_url("chat") != own_llama.url


def test_killing_the_engine_mid_stream_breaks_the_stream(own_llama: EngineHandle) -> None:
    body = {
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
        "stream": True,
        "max_tokens": 2000,
    }
    received = ""
    with pytest.raises(httpx.TransportError):
        with httpx.stream(
            "POST", own_llama.url + "/v1/chat/completions", json=body, timeout=60
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    received += delta.get("content") or ""
                    if len(received) > 20:
                        os.kill(own_llama.pid, signal.SIGKILL)
    assert len(received) > 20
    assert wait_until_gone(own_llama.pid)


ENGINE_IN_A_SCRIPT = """
import sys, time
from nbchat.engine import start_engine
handle = start_engine(sys.argv[1], reuse=False, log_path=sys.argv[2])
print(handle.pid, flush=True)
if sys.argv[3] == "wait":
    time.sleep(600)
"""


@pytest.mark.server
def test_an_engine_stops_when_its_python_process_exits(gguf_path: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENGINE_IN_A_SCRIPT, str(gguf_path), str(tmp_path / "e.log"), "exit"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert wait_until_gone(int(done.stdout), timeout_s=2.0)


@pytest.mark.server
def test_an_engine_dies_with_a_killed_parent(gguf_path: Path, tmp_path: Path) -> None:
    """A kernel that crashes (SIGKILL, no atexit) must not leave its engine running."""
    parent = subprocess.Popen(
        [sys.executable, "-c", ENGINE_IN_A_SCRIPT, str(gguf_path), str(tmp_path / "e.log"), "wait"],
        stdout=subprocess.PIPE,
        text=True,
    )
    engine_pid = None
    try:
        assert parent.stdout is not None
        engine_pid = int(parent.stdout.readline())
        assert not pid_is_gone(engine_pid)
        parent.kill()
        parent.wait()
        assert wait_until_gone(engine_pid)
    finally:
        parent.kill()
        parent.wait()
        if engine_pid is not None and not pid_is_gone(engine_pid):
            os.kill(engine_pid, signal.SIGKILL)  # do not leave an orphan when failing


@pytest.mark.server
def test_the_cli_starts_a_detached_engine_reports_it_and_stops_it(
    gguf_path: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "NBCHAT_CACHE_DIR": str(tmp_path / "cache")}
    state = tmp_path / "cache" / "engine-chat.json"
    started = run_cli("engine", "start", "--model", str(gguf_path), env=env)
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        record = json.loads(state.read_text())
        assert (record["url"], record["model"], record["kind"]) == (url, str(gguf_path), "chat")
        assert httpx.get(url + "/health", timeout=10).status_code == 200  # outlived the CLI

        status = run_cli("engine", "status", env=env)
        assert status.returncode == 0
        assert url in status.stdout and "healthy" in status.stdout

        again = run_cli("engine", "start", "--model", str(gguf_path), env=env)
        assert (again.returncode, again.stdout.strip()) == (0, url)  # the same engine
        other = run_cli("engine", "start", "--model", str(gguf_path), "--ctx", "4096", env=env)
        assert other.returncode == 2
        assert "already running" in other.stderr and "nbchat engine stop" in other.stderr

        stopped = run_cli("engine", "stop", env=env)
        assert stopped.returncode == 0
        assert "stopped the chat engine" in stopped.stderr
        assert wait_until_gone(record["pid"])
        assert not state.exists()

        after = run_cli("engine", "status", env=env)
        assert after.returncode == 1
        assert "not running" in after.stdout
    finally:
        if state.exists():
            os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)


def test_the_cli_explains_a_missing_model_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "NBCHAT_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("engine", "start", "--model", str(tmp_path / "nope.gguf"), env=env)
    assert result.returncode == 2
    assert "Model file not found" in result.stderr and "nope.gguf" in result.stderr
    assert "Traceback" not in result.stderr


# -- a llama-server binary ------------------------------------------------------------

FAKE_LLAMA_SERVER = '''#!{python}
"""Stands in for llama-server: records its command line, answers like the real one."""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
with open({record!r}, "w") as out:
    json.dump({{"argv": args, "pid": os.getpid()}}, out)

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.reply({{"status": "ok"}})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "".join(m["content"] for m in body["messages"])
        self.reply({{"prompt": "<start_of_turn>user\\n" + text + "<end_of_turn>\\n"}})

port = int(args[args.index("--port") + 1])
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


@pytest.fixture
def fake_llama_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A llama-server look-alike named by NBCHAT_LLAMA_SERVER; returns its record file."""
    record = tmp_path / "fake-server.json"
    binary = tmp_path / "llama-server"
    binary.write_text(FAKE_LLAMA_SERVER.format(python=sys.executable, record=str(record)))
    binary.chmod(0o755)
    monkeypatch.setenv("NBCHAT_LLAMA_SERVER", str(binary))
    return record


# gemma-3-270m carries no chat template: the binary must get the built-in one, Jinja off.
def test_a_llama_server_binary_is_preferred_and_started_with_the_template_fix(
    fake_llama_server: Path, embedding_gguf_path: Path, tmp_path: Path
) -> None:
    handle = start_engine(embedding_gguf_path, ctx_tokens=4096, reuse=False, log_path=tmp_path / "bin.log")
    try:
        assert handle.engine == "llama-server"
        launched = json.loads(fake_llama_server.read_text())
        argv = launched["argv"]
        assert argv[argv.index("--port") + 1] == handle.url.rsplit(":", 1)[1]
        assert argv[argv.index("-m") + 1] == str(embedding_gguf_path)
        assert argv[argv.index("-c") + 1] == "4096"
        assert "--no-jinja" in argv and argv[argv.index("--chat-template") + 1] == "gemma"
        assert httpx.get(handle.url + "/health", timeout=10).status_code == 200
    finally:
        handle.stop()
    assert pid_is_gone(handle.pid)
    assert wait_until_gone(launched["pid"])


def test_a_llama_server_binary_dies_when_its_wrapper_is_killed(
    fake_llama_server: Path, embedding_gguf_path: Path, tmp_path: Path
) -> None:
    handle = start_engine(embedding_gguf_path, reuse=False, log_path=tmp_path / "bin.log")
    server_pid = json.loads(fake_llama_server.read_text())["pid"]
    try:
        os.kill(handle.pid, signal.SIGKILL)
        assert wait_until_gone(handle.pid)
        assert wait_until_gone(server_pid)
    finally:
        handle.stop()
        if not pid_is_gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # do not leave an orphan when failing


def test_serve_runs_in_the_foreground_and_stops_on_sigterm(
    fake_llama_server: Path, embedding_gguf_path: Path
) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "nbchat", "engine", "serve", "--model", str(embedding_gguf_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout is not None
        announced = json.loads(serve.stdout.readline())
        assert announced["pid"] == serve.pid
        assert announced["chat_template"] == "gemma (Jinja off)"
        assert httpx.get(announced["url"] + "/health", timeout=10).status_code == 200
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=15) == 0
        assert wait_until_gone(json.loads(fake_llama_server.read_text())["pid"])
    finally:
        serve.kill()
        serve.wait()
