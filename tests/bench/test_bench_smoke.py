"""Every benchmark still runs: each one, in a tiny configuration, prints its JSON line.

No timing is asserted here (the figures live in docs/performance.md); only the shape of
what each benchmark prints, and for the KV-cache benchmark the one comparison that does
not depend on the machine's speed: nbchat's layout evaluates fewer prompt tokens than
the reference layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def run_bench(
    tmp_path: Path, script: str, *args: str, timeout_s: float = 600
) -> tuple[dict[str, Any], str]:
    """Run ``bench/<script>`` in a fresh interpreter; its one JSON line, and all it printed.

    The benchmark's temp folder (``TMPDIR``) is a folder of the test's, which must be
    empty again when the benchmark ends: a benchmark leaves nothing in the temp folder.
    """
    temp = tmp_path / "bench-tmp"
    temp.mkdir()
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True, text=True, cwd=REPO, timeout=timeout_s,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in temp.iterdir()) == [], "left in the temp folder"
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"bench":')]
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0]), done.stdout


def test_import_bench_reports_import_and_load_times_and_no_heavy_module(tmp_path):
    line, printed = run_bench(tmp_path, "bench_import.py", "--runs", "1")
    assert line["bench"] == "import"
    for key in ("bare_s", "import_added_s", "load_ext_inprocess_s", "load_added_s"):
        assert isinstance(line[key], float), key
    assert line["load_ext_inprocess_s"] > 0
    assert line["heavy_modules_after_load"] == []
    assert "%load_ext nbchat adds" in printed


def test_overhead_bench_reports_a_cell_per_session_length_and_file_count(tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_overhead.py", "--turns", "3,6", "--files", "0,2", "--runs", "2",
        "--warmup", "0", "--pdf-bytes", "150000",
    )
    assert line["bench"] == "overhead"
    cells = {(c["turns"], c["files"]): c for c in line["cells"]}
    assert set(cells) == {(3, 0), (3, 2), (6, 0), (6, 2)}
    for cell in cells.values():
        assert cell["runs"] == 2
        assert cell["turn_p50_ms"] > 0 and cell["bare_p50_ms"] > 0
        assert cell["overhead_p95_ms"] >= cell["overhead_p50_ms"]
    assert cells[(6, 2)]["request_body_bytes"] > cells[(6, 0)]["request_body_bytes"]
    assert line["largest"] == {"turns": 6, "files": 2,
                               "overhead_p50_ms": cells[(6, 2)]["overhead_p50_ms"]}
    assert line["pdf_bytes"] >= 150000
    assert "p50" in printed


def test_streaming_bench_counts_iopub_traffic_for_the_magic_and_the_widget(tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_streaming.py", "--tokens", "60", "--tokens-per-s", "300", "--runs", "2"
    )
    assert line["bench"] == "streaming"
    answer_bytes = line["answer_bytes"]
    assert answer_bytes >= 200
    for frontend in ("magic", "widget"):
        figures = line[frontend]
        assert figures["updates"] >= 1, frontend
        assert figures["iopub_bytes"] > answer_bytes, frontend
        assert figures["bytes_ratio"] == round(figures["iopub_bytes"] / answer_bytes, 4)
        assert figures["kernel_cpu_s"] > 0, frontend
        assert figures["text_messages"] >= 1, frontend
        assert figures["text_content_bytes"] >= answer_bytes, frontend
    first, second = line["all_runs"]["widget"]
    assert first["delta_messages"] >= 1
    assert first["delta_payload_bytes"] >= answer_bytes
    assert second["delta_payload_bytes"] < 1.5 * first["delta_payload_bytes"]  # per run
    assert "through a real kernel" in printed


def test_pdf_bench_times_the_three_readers_on_generated_and_given_pdfs(tmp_path):
    from filegen import make_encrypted_pdf, make_ocr_layer_pdf

    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    make_ocr_layer_pdf(pdfs, "split.pdf", ["United Arab Shipping Co. in Dubai"])
    make_encrypted_pdf(pdfs, "locked.pdf", "Secret", user_password="hunter2")
    line, printed = run_bench(tmp_path, "bench_pdf.py", str(pdfs), "--pages", "4", "--runs", "1")
    assert line["bench"] == "pdf"
    assert [row["pages"] for row in line["generated"]] == [4, 20, 10]
    text, split, scanned = line["generated"]
    assert text["markers_found"] == 4 and text["pages_from_pypdf"] == []
    assert split["markers_found"] == 20 and split["pages_from_pypdf"] == list(range(1, 21))
    assert split["pdfium"]["words"] > split["rule"]["words"] == split["pypdf"]["words"]
    assert scanned["rule"]["letters"] == 0
    for row in line["generated"]:
        for reader in ("pdfium", "pypdf", "rule"):
            assert row[reader]["s"] > 0 and row[reader]["error"] == "", (row["name"], reader)
    rows = {row["name"]: row for row in line["documents"]}
    assert set(rows) == {"split.pdf", "locked.pdf"}
    assert rows["split.pdf"]["pages_from_pypdf"] == [1]
    assert rows["locked.pdf"]["rule"]["error"].startswith("password-protected")
    assert line["detached_shares"]["pages_over_threshold"][0][:2] == ["split.pdf", 1]
    assert line["goal"]["measured_pages"] == 4 and isinstance(line["goal"]["met"], bool)
    assert "goal: a 100-page text PDF" in printed


def test_chunk_storage_bench_measures_the_index_before_and_after_m005(tmp_path):
    line, printed = run_bench(tmp_path, "bench_chunk_storage.py", "--chars", "30000")
    assert line["bench"] == "chunk_storage" and line["chunks"] > 10
    assert line["now_bytes"] < line["m004_bytes"] and line["upgraded_bytes"] < line["m004_bytes"]
    assert line["saved_bytes"] == line["m004_bytes"] - line["now_bytes"]
    assert "m004 (text stored twice)" in printed


def test_passage_prepare_bench_times_a_later_turn_with_files_sent_in_part(tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_passage_prepare.py", "--chars", "30000", "--runs", "2",
        "--new-client-runs", "1", "--warmup", "0",
    )
    assert line["bench"] == "passage_prepare" and line["files"] == 2
    assert all(count > 10 for count in line["chunks"]), line["chunks"]
    assert line["runs"] == 2 and line["new_client_runs"] == 1
    assert line["kept_p95_ms"] >= line["kept_p50_ms"] > 0 and line["new_client_p50_ms"] > 0
    assert line["brought_in_turns"] >= 1  # the timed turns did choose passages
    assert "kept (one kernel)" in printed


def test_ttft_bench_times_nbchat_and_bare_httpx_on_the_real_server(llama_url, tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_ttft.py", "--url", llama_url, "--pairs", "2", "--file-tokens", "150",
        "--max-tokens", "2",
    )
    assert line["bench"] == "ttft"
    assert line["failed_pairs"] == [], printed
    assert len(line["nbchat_runs_ms"]) == len(line["bare_runs_ms"]) == 2
    assert line["nbchat_ms"] > 0 and line["bare_ms"] > 0
    assert line["nbchat_prompt_n"] > 0 and line["bare_prompt_n"] > 0
    assert "ratio nbchat / bare" in printed


def test_kv_cache_bench_shows_nbchat_evaluating_less_than_the_reference(llama_url, tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_kv_cache.py", "--url", llama_url, "--turns", "3", "--file-tokens", "300",
        "--max-tokens", "4",
    )
    assert line["bench"] == "kv_cache"
    nbchat, reference = line["nbchat"], line["reference"]
    assert [t["turn"] for t in nbchat] == [t["turn"] for t in reference] == [1, 2, 3]
    assert [t["files"] for t in nbchat] == [3, 0, 0]
    for turn in nbchat + reference:
        # What the server evaluated plus what it reused is the whole templated prompt.
        assert turn["prompt_n"] + turn["cache_n"] == turn["prompt_tokens"], turn
    assert line["nbchat_prompt_n"] == sum(t["prompt_n"] for t in nbchat)
    assert line["nbchat_prompt_n"] < line["reference_prompt_n"]
    assert nbchat[1]["cache_n"] > nbchat[0]["prompt_tokens"] // 2
    assert line["reference_first_cache_n"] < 10  # the runs cannot share a cached prefix
    assert "reference layout" in printed


def test_large_docs_bench_finds_the_facts_and_keeps_the_prefix_on_the_real_server(
    llama_url, tmp_path
):
    line, printed = run_bench(
        tmp_path, "bench_large_docs.py", "--url", llama_url, "--url-window", "8192",
        "--doc-chars", "60000", "--no-answers", "--max-tokens", "8", timeout_s=900,
    )
    assert line["bench"] == "large_docs"
    [window] = line["windows"]
    assert window["window"] == 8192
    # Which facts reach the prompt and whether the prefix holds do not depend on speed.
    assert window["single_in_prompt"] >= 9 and window["single_answered"] is None
    assert window["later_in_prompt"] >= 4 and window["later_asked"] == 5
    assert window["compactions"] <= 1 and window["prefix_breaks_outside_compaction"] == 0
    turns = line["details"]["8192"]["conversation"]
    assert [t["turn"] for t in turns] == [1, 2, 3, 4, 5, 6]
    for turn in turns:
        assert turn["prompt_n"] + turn["cache_n"] == turn["prompt_tokens"], turn
    assert window["sum_prompt_n"] == sum(t["prompt_n"] for t in turns)
    assert "Σ prompt_n / growth" in printed


def test_bench_run_prints_the_summary_and_writes_the_json_lines(tmp_path):
    out = tmp_path / "results.jsonl"
    temp = tmp_path / "bench-tmp"
    temp.mkdir()
    done = subprocess.run(
        [sys.executable, str(BENCH / "run"), "--quick", "--only", "import", "--json-out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in temp.iterdir()) == [], "left in the temp folder"
    assert "figures against targets" in done.stdout
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["bench"] for w in written] == ["import"]


@pytest.mark.server  # starts its own engine on the default model
def test_answers_bench_scores_each_kind_of_question_for_a_model(tmp_path):
    line, printed = run_bench(
        tmp_path, "bench_answers.py", "--models", "smollm2-135m-instruct", "--limit", "1", timeout_s=1800
    )
    assert line["bench"] == "answers" and line["questions"] == 4
    [row] = line["rows"]
    assert row["model"] == "smollm2-135m-instruct"
    assert set(row["by_kind"]) == {"general", "code", "file", "dataframe"}
    assert all(total == 1 for _, total in row["by_kind"].values())
    assert row["score"] == sum(right for right, _ in row["by_kind"].values())
    assert len(row["failed"]) == row["questions"] - row["score"]
    assert "smollm2-135m-instruct" in printed


def test_answers_bench_scoring_needs_the_words_and_rejects_wrong_values_and_echoes():
    sys.path.insert(0, str(BENCH))
    try:
        from bench_answers import QUESTIONS, REPORT, q, score
    finally:
        sys.path.remove(str(BENCH))
    assert len(QUESTIONS) >= 30
    capital = q("general", "What is the capital of France?", "Paris", wrong=("Lyon",))
    assert score(capital, "The capital of France is Paris.", "") == []
    assert score(capital, "Paris, not Lyon.", "") == ["wrong value Lyon"]
    assert score(capital, "It is a city.", "") == ["missing Paris"]
    assert "echoes the question" in score(capital, "What is the capital of France? Paris", "")
    days = q("general", "How many days?", ("7", "seven"), wrong=("6",))
    assert score(days, "There are 7 days.", "") == []
    assert score(days, "There are 17 days.", "") == ["missing 7 / seven"]  # not inside 17
    code = q("code", "Reverse s?", "[::-1]")
    assert score(code, "Use s[::-1].", "") == []
    copied = REPORT.replace("\n", " ")[:120]
    manager = q("file", "Who is the trial manager?", "Whitfield")
    assert score(manager, copied, REPORT) == ["copies the prompt"]
    assert "echoes the chat template" in score(manager, "Whitfield<|im_end|>", REPORT)
    system_echo = "You are a helpful assistant working inside a Jupyter notebook. Whitfield"
    assert score(manager, system_echo, REPORT) == ["copies the prompt"]
