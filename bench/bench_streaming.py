"""Streaming cost in a real kernel: display updates, iopub bytes and kernel CPU time.

A scripted OpenAI-compatible server (``tests/sse_server.py``) streams a 2,000-token
answer (one token of about four characters per SSE event, paced at
``--tokens-per-s``). A notebook made on the fly runs in a real kernel through nbclient,
with ``%load_ext nbchat`` and ``NBCHAT_BACKEND=openai`` / ``NBCHAT_BASE_URL`` pointing
at that server:

- **magic**: a ``%%chat --new`` cell;
- **widget**: a :class:`~nbchat.ChatWidget` made in an earlier cell; the measured cell
  sends a question as the panel would (its ``send`` message) and waits for the answer.

Every iopub message the client receives while the measured cell runs is counted, with
its size as serialized by the kernel's session (header, parent header, metadata,
content, buffers and signature). Display updates are the ``display_data`` /
``update_display_data`` messages (magic) or the widget's ``comm_msg`` messages (widget).
Kernel CPU is ``time.process_time()`` (all threads) around the measured cell.

Targets (issue "Benchmarks", item 3): ≤ 20 display updates per second of streaming;
iopub bytes ≤ 30× the answer's bytes for the magic, ≤ 2× for the widget.

    python bench/bench_streaming.py [--tokens 2000] [--tokens-per-s 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import emit, load_test_helper, median, print_table, prose, scratch_dir

UPDATES_PER_S_TARGET = 20.0
MAGIC_BYTES_TARGET = 30.0
WIDGET_BYTES_TARGET = 2.0
QUESTION = "Write the long report."
DISPLAY_TYPES = {"display_data", "update_display_data"}


@dataclass(frozen=True)
class Received:
    """One iopub message: its type, whole size on the wire, content size, arrival time."""

    msg_type: str
    wire_bytes: int
    content_bytes: int
    at_s: float
    content: Any

    @property
    def is_delta(self) -> bool:
        """A widget message carrying answer text (anywidget's custom message ``{"d": ...}``)."""
        data = self.content.get("data") if isinstance(self.content, dict) else None
        inner = data.get("content") if isinstance(data, dict) else None
        return bool(
            isinstance(data, dict) and data.get("method") == "custom"
            and isinstance(inner, dict) and "d" in inner
        )


@dataclass
class IopubTap:
    """Records the iopub messages the client reads while ``recording``."""

    session: Any
    recording: bool = False
    messages: list[Received] = field(default_factory=list)

    def install(self, channel: Any) -> None:
        original = channel.get_msg

        async def get_msg(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            if self.recording:
                self.messages.append(self._received(result))
            return result

        channel.get_msg = get_msg

    def _received(self, msg: dict[str, Any]) -> Received:
        frames = self.session.serialize(msg)  # as the kernel's session sent it, signed
        buffers = sum(len(memoryview(b).cast("B")) for b in msg.get("buffers") or ())
        content = len(json.dumps(msg["content"], default=str).encode("utf-8")) + buffers
        return Received(msg["msg_type"], sum(len(f) for f in frames) + buffers, content,
                        time.monotonic(), msg["content"])


def answer_text(tokens: int) -> str:
    """Markdown of about four characters per token: a heading, prose, a list, code."""
    head = "# Report\n\n"
    tail = "\n\n- one\n- two\n\n```python\nprint(1)\n```\n"
    body = prose(11, tokens // 10 + 2)
    return head + body[: max(0, 4 * tokens - len(head) - len(tail))] + tail


def pieces_of(text: str, tokens: int) -> list[str]:
    size = max(1, len(text) // tokens)
    pieces = [text[i : i + size] for i in range(0, size * tokens, size)]
    pieces[-1] += text[size * tokens:]
    return pieces


def notebook_cells(frontend: str) -> tuple[list[str], int]:
    """The cells of the notebook, and the index of the measured one."""
    setup = "%load_ext nbchat\nimport time, json\n"
    if frontend == "magic":
        return [setup, "_cpu0 = time.process_time()", f"%%chat --new\n{QUESTION}",
                "print(json.dumps({'cpu_s': time.process_time() - _cpu0}))"], 2
    return [
        setup + "from nbchat import ChatWidget\nw = ChatWidget()\nw.wait(60)\ndisplay(w)",
        "w.handle_message({'type': 'new_session'}, [])\nw.wait(60)\n"
        "_traffic0 = (w.traffic.delta_messages, w.traffic.delta_bytes)\n"
        "_cpu0 = time.process_time()",
        f"w.handle_message({{'type': 'send', 'text': {QUESTION!r}}}, [])\n"
        "assert w.wait(600), 'the answer did not finish'\nassert not w.error, w.error",
        "print(json.dumps({'cpu_s': time.process_time() - _cpu0, "
        "'deltas': w.traffic.delta_messages - _traffic0[0], "
        "'delta_bytes': w.traffic.delta_bytes - _traffic0[1]}))",
    ], 2


def run_frontend(
    frontend: str, url: str, runs: int, answer_bytes: int, folder: Path
) -> list[dict[str, Any]]:
    import nbformat
    from nbclient import NotebookClient

    os.environ.update({
        "NBCHAT_BACKEND": "openai",
        "NBCHAT_BASE_URL": url,
        "NBCHAT_DB": str(folder / f"{frontend}.sqlite"),
    })
    os.environ.pop("NBCHAT_EMBEDDING_URL", None)
    sources, measured = notebook_cells(frontend)
    setup_cells = sources[: measured - 1]
    repeated = sources[measured - 1 :]
    results = []
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in setup_cells]
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False)
    with client.setup_kernel():
        assert client.kc is not None
        tap = IopubTap(client.kc.session)
        tap.install(client.kc.iopub_channel)
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        for _ in range(runs):
            cells = [nbformat.v4.new_code_cell(s) for s in repeated]
            offset = len(nb.cells)
            nb.cells.extend(cells)
            client.execute_cell(cells[0], offset)
            tap.messages.clear()
            tap.recording = True
            started = time.monotonic()
            client.execute_cell(cells[1], offset + 1)
            wall_s = time.monotonic() - started
            tap.recording = False
            recorded = list(tap.messages)
            client.execute_cell(cells[2], offset + 2)
            printed = "".join(
                o.get("text", "") for o in cells[2].outputs if o.get("name") == "stdout"
            )
            kernel = json.loads(printed.strip().splitlines()[-1])
            results.append(_figures(frontend, recorded, wall_s, kernel, answer_bytes, cells[1]))
    return results


def _figures(
    frontend: str, recorded: list[Received], wall_s: float, kernel: dict[str, Any],
    answer_bytes: int, cell: Any,
) -> dict[str, Any]:
    if frontend == "magic":
        updates = [m for m in recorded if m.msg_type in DISPLAY_TYPES]
        text_messages = [m for m in recorded if m.msg_type == "update_display_data"]
    else:
        updates = [m for m in recorded if m.msg_type == "comm_msg"]
        text_messages = [m for m in updates if m.is_delta]
    iopub_bytes = sum(m.wire_bytes for m in recorded)
    envelopes = sorted(m.wire_bytes - m.content_bytes for m in recorded)
    figures = {
        "frontend": frontend,
        "updates": len(updates),
        "updates_per_s": len(updates) / wall_s if wall_s > 0 else 0.0,
        "peak_updates_per_s": peak_per_second(sorted(m.at_s for m in updates)),
        "iopub_messages": len(recorded),
        "iopub_bytes": iopub_bytes,
        "bytes_ratio": iopub_bytes / answer_bytes,
        "text_messages": len(text_messages),
        "text_wire_bytes": sum(m.wire_bytes for m in text_messages),
        "text_content_bytes": sum(m.content_bytes for m in text_messages),
        "other_wire_bytes": iopub_bytes - sum(m.wire_bytes for m in text_messages),
        "envelope_bytes_median": envelopes[len(envelopes) // 2] if envelopes else 0,
        "kernel_cpu_s": kernel["cpu_s"],
        "cell_wall_s": wall_s,
    }
    if frontend == "widget":
        figures["delta_messages"] = kernel["deltas"]
        figures["delta_payload_bytes"] = kernel["delta_bytes"]
        figures["payload_ratio"] = kernel["delta_bytes"] / answer_bytes
    else:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, errors
    return figures


def peak_per_second(times: list[float]) -> int:
    """The most events in any one-second window."""
    best = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="answer length in SSE events")
    parser.add_argument("--tokens-per-s", type=float, default=50.0,
                        help="pace of the answer (the local engine streams about 45/s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frontends", default="magic,widget")
    args = parser.parse_args(argv)
    sse = load_test_helper("sse_server")

    text = answer_text(args.tokens)
    pieces = pieces_of(text, args.tokens)
    answer_bytes = len(text.encode("utf-8"))
    pause_s = 1.0 / args.tokens_per_s if args.tokens_per_s > 0 else 0.0

    def reply(request: Any) -> Any:
        parts: list[Any] = []
        for index, piece in enumerate(pieces):
            if index and pause_s:
                parts.append(pause_s)
            parts.append(sse.delta_chunk(piece, role="assistant" if index == 0 else None))
        parts += [sse.finish_chunk("stop"), sse.usage_chunk(40, len(pieces)), sse.DONE]
        return sse.sse_reply(*parts)

    folder = scratch_dir("streaming")
    frontends = [f for f in args.frontends.split(",") if f]
    results: dict[str, list[dict[str, Any]]] = {}
    with sse.ScriptedServer(default=reply, n_ctx=32_768) as server:
        for frontend in frontends:
            results[frontend] = run_frontend(frontend, server.url, args.runs, answer_bytes, folder)

    summary: dict[str, Any] = {}
    rows = []
    for frontend, runs in results.items():
        keys = [k for k in runs[0] if k != "frontend"]
        med = {k: median([r[k] for r in runs]) for k in keys}
        target = MAGIC_BYTES_TARGET if frontend == "magic" else WIDGET_BYTES_TARGET
        med["met_updates"] = med["peak_updates_per_s"] <= UPDATES_PER_S_TARGET
        med["met_bytes"] = med["bytes_ratio"] <= target
        summary[frontend] = med
        rows.append([frontend, med["updates"], med["updates_per_s"], med["peak_updates_per_s"],
                     med["iopub_messages"],
                     med["iopub_bytes"] / 1024, med["bytes_ratio"], f"≤ {target:g}",
                     med["kernel_cpu_s"], med["cell_wall_s"]])
    print_table(
        f"streaming a {args.tokens:,}-token answer ({answer_bytes:,} bytes) at "
        f"{args.tokens_per_s:g} tokens/s through a real kernel (median of {args.runs})",
        ["front end", "updates", "updates/s", "peak/s", "iopub msgs", "iopub KB", "× answer",
         "target", "kernel CPU s", "cell s"],
        rows,
    )
    print_table(
        "where the bytes go (medians): messages carrying answer text, and the rest",
        ["front end", "text msgs", "text KB (wire)", "text KB (content)", "other KB",
         "envelope B/msg"],
        [[f, m["text_messages"], m["text_wire_bytes"] / 1024, m["text_content_bytes"] / 1024,
          m["other_wire_bytes"] / 1024, m["envelope_bytes_median"]] for f, m in summary.items()],
    )
    if "widget" in summary:
        w = summary["widget"]
        print(f"widget payload only (its own count of the delta messages' JSON, without "
              f"Jupyter's envelope): {w['delta_payload_bytes']:,.0f} bytes = "
              f"{w['payload_ratio']:.2f}× the answer")
        print()
    emit(
        "streaming",
        {
            "tokens": args.tokens,
            "tokens_per_s": args.tokens_per_s,
            "answer_bytes": answer_bytes,
            "runs": args.runs,
            "targets": {"updates_per_s_max": UPDATES_PER_S_TARGET,
                        "magic_bytes_ratio_max": MAGIC_BYTES_TARGET,
                        "widget_bytes_ratio_max": WIDGET_BYTES_TARGET},
            **summary,
            "all_runs": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
