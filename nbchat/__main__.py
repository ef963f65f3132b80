"""The ``nbchat`` command line: ``nbchat demo``, ``nbchat engine start|stop|status|models|serve``
and ``nbchat db init`` (the team store, in :mod:`nbchat.dbcommand`).

``nbchat --help`` and ``nbchat engine --help`` are its documentation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nbchat.core.errors import NbChatError

__all__ = ["main", "build_parser", "copy_example_notebooks"]


def _kind(args: argparse.Namespace) -> str:
    return "embeddings" if args.embeddings else "chat"


def _engine_start(args: argparse.Namespace) -> int:
    from nbchat.engine import start_engine

    handle = start_engine(
        args.model,
        embeddings=args.embeddings,
        ctx_tokens=args.ctx,
        port=args.port,
        chat_template=args.chat_template,
        quiet=False,
        detach=True,
        timeout_s=args.timeout,
    )
    print(handle.url)
    from nbchat.core.settings import BACKEND_INFO, env_variables

    llama = BACKEND_INFO["llama"]
    hint = env_variables()["embedding_url"] if args.embeddings else llama.url_variable
    flag = " --embeddings" if args.embeddings else ""
    print(
        f"nbchat: {handle.kind} engine pid {handle.pid}; point nbchat at it with "
        f"{hint}={handle.url}; stop it with `nbchat engine stop{flag}`.",
        file=sys.stderr,
    )
    return 0


def _engine_stop(args: argparse.Namespace) -> int:
    from nbchat.engine import stop_engine

    kind = _kind(args)
    if stop_engine(kind):
        print(f"nbchat: stopped the {kind} engine.", file=sys.stderr)
    else:
        print(f"nbchat: no {kind} engine was running.", file=sys.stderr)
    return 0


def _engine_status(args: argparse.Namespace) -> int:
    from nbchat.engine import engine_status

    status = engine_status(_kind(args))
    if args.json:
        print(json.dumps(status, indent=2))
    elif not status["running"]:
        print(f"{status['kind']} engine: not running (start it with `nbchat engine start`)")
    else:
        health = "healthy" if status["healthy"] else "not answering /health"
        print(
            f"{status['kind']} engine: running at {status['url']} (pid {status['pid']}, "
            f"{health})\n  model: {status['model']}\n  context: {status['ctx_tokens']} "
            f"tokens; server: {status['engine']}; template: {status['chat_template']}\n"
            f"  log: {status['log']}"
        )
    return 0 if status["healthy"] else 1


def _engine_models(args: argparse.Namespace) -> int:
    from nbchat.engine.model import format_models, model_rows

    print(json.dumps(model_rows(), indent=2) if args.json else format_models())
    return 0


def _engine_serve(args: argparse.Namespace) -> int:
    from nbchat.engine.server import options_from_args, serve

    return serve(options_from_args(args))


def _demo(args: argparse.Namespace) -> int:
    """Prepare the default model, then open the quickstart notebook in JupyterLab.

    JupyterLab serves a copy of the example notebooks in a folder of the user's (the
    user data dir, or ``--dir``): running cells saves outputs into the notebooks, which
    must not edit the clone's tracked files.
    """
    import os
    import shutil

    from nbchat.engine import default_model_path

    folder = copy_example_notebooks(Path(args.dir).expanduser() if args.dir else None)
    default_model_path()  # assembles the model once, with progress, before Jupyter starts
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        raise NbChatError('JupyterLab is not installed: pip install "nbchat[demo]".')
    command = [sys.executable, "-m", "jupyter", "lab", "--notebook-dir", str(folder)]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root
    if args.port:
        command += ["--port", str(args.port)]
    command.append("quickstart.ipynb")
    print(
        f"nbchat: opening {folder / 'quickstart.ipynb'} in JupyterLab (a copy of the "
        "example notebooks: yours to edit)",
        file=sys.stderr,
    )
    os.chdir(folder)  # JupyterLab resolves the notebook's path from the working directory
    os.execv(sys.executable, command)
    return 0  # not reached


def copy_example_notebooks(folder: Path | None = None) -> Path:
    """Copy the clone's example notebooks into ``folder`` and return it.

    The default folder is ``notebooks`` in the user data dir (``~/.local/share/nbchat``
    on Linux). A notebook already there is left alone, so the user's edits and outputs
    survive the next ``nbchat demo``; a notebook missing there is copied.
    """
    import shutil

    source = Path(__file__).resolve().parent.parent / "notebooks"
    if not (source / "quickstart.ipynb").exists():
        raise NbChatError(
            "The example notebooks come with a clone of the nbchat repository: run "
            "`nbchat demo` from one (pip install -e \".[demo]\")."
        )
    if folder is None:
        import platformdirs

        folder = Path(platformdirs.user_data_dir("nbchat")) / "notebooks"
    if folder.resolve() == source.resolve():
        raise NbChatError(
            f"{folder} holds the repository's own example notebooks; give --dir another "
            "folder, so that running cells does not edit them."
        )
    folder.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(source.glob("*.ipynb")):
        if not (folder / notebook.name).exists():
            shutil.copy2(notebook, folder / notebook.name)
    return folder


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbchat",
        description="nbchat: a chat assistant inside Jupyter. In a notebook, run "
        "`%load_ext nbchat`. This command manages the local llama.cpp engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="open the quickstart notebook in JupyterLab, on the local model",
        description="Fetch the default model (once), then start JupyterLab on a copy of the "
        "example notebooks (made once; your edits are kept) with quickstart.ipynb open. "
        "The notebook starts the local engine itself (`%%chat engine start`).",
    )
    demo.add_argument(
        "--dir",
        help="copy the example notebooks here and work there (default: notebooks in the "
        "user data dir)",
    )
    demo.add_argument("--port", type=int, default=0, help="JupyterLab's port")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.set_defaults(run=_demo)
    engine = commands.add_parser(
        "engine",
        help="start, stop or check the local llama.cpp server",
        description="The local engine is llama.cpp's server on 127.0.0.1, from the "
        "xllamacpp wheel (or a llama-server binary named by NBCHAT_LLAMA_SERVER or "
        "found on PATH). Without --model it runs SmolLM2-135M-Instruct (chat) or "
        "gemma-3-270m (embeddings), fetched once into the cache: small models, there so "
        "that everything works with no setup. Give a known model's name (`nbchat engine "
        "models`) or any GGUF file with --model. Chat and embeddings are two separate "
        "servers (--embeddings). Files live in NBCHAT_CACHE_DIR, or the "
        "user cache dir.",
    )
    actions = engine.add_subparsers(dest="action", required=True, metavar="ACTION")

    start = actions.add_parser(
        "start",
        help="start an engine in the background and print its URL",
        description="Start an engine that keeps running after this command exits; "
        "its URL, pid and model are recorded for `stop` and `status`.",
    )
    start.add_argument(
        "--model",
        metavar="NAME|GGUF",
        help="a known model (smollm2-135m-instruct, gemma-3-270m) or a GGUF file "
        "(default: smollm2-135m-instruct, or gemma-3-270m with --embeddings)",
    )
    start.add_argument(
        "--embeddings", action="store_true", help="start the embeddings server (mean pooling)"
    )
    start.add_argument(
        "--ctx",
        type=int,
        default=8192,
        metavar="N",
        help="context window in tokens (default %(default)s)",
    )
    start.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)"
    )
    start.add_argument(
        "--chat-template",
        metavar="NAME",
        help="llama.cpp built-in chat template (default: the model's own, else gemma)",
    )
    start.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for it to load (default %(default)s)",
    )
    start.set_defaults(run=_engine_start)

    stop = actions.add_parser("stop", help="stop the engine started by `start`")
    stop.add_argument("--embeddings", action="store_true", help="stop the embeddings server")
    stop.set_defaults(run=_engine_stop)

    models = actions.add_parser(
        "models",
        help="list the models known by name: size, licence, context, whether cached",
    )
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.set_defaults(run=_engine_models)

    status = actions.add_parser(
        "status", help="show the engine's URL and health (exit code 1 when it is not healthy)"
    )
    status.add_argument("--embeddings", action="store_true", help="the embeddings server")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(run=_engine_status)

    from nbchat.engine.server import add_serve_arguments

    serve = actions.add_parser(
        "serve",
        help="run one server in the foreground until Ctrl-C",
        description="Run one server in the foreground; it prints a JSON line with its "
        "URL once it listens, and stops on Ctrl-C/SIGTERM (or when stdin closes, if "
        "stdin is a pipe).",
    )
    add_serve_arguments(serve)
    serve.set_defaults(run=_engine_serve)

    from nbchat.dbcommand import add_db_parser

    add_db_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except NbChatError as error:
        print(f"nbchat: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
