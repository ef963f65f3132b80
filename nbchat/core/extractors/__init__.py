"""One module per file format, each turning bytes into text for the model.

The public entry point is :mod:`nbchat.core.extract`; these modules are its parts:

- ``record``: the :class:`Extracted` result; ``problems``: every user-facing message;
- ``files``: reading a path safely; ``formats``: choosing the format of some bytes;
- ``charset``: decoding text whose encoding is unknown; ``table``: Markdown tables;
- ``zipguard``: refusing Office files that would unpack to something huge;
- one extractor per format: ``pdf``, ``word``, ``excel``, ``powerpoint``,
  ``delimited`` (CSV/TSV), ``jsondoc``, ``webpage`` (HTML), ``notebook`` (.ipynb),
  ``plaintext`` (text, Markdown, source code).

Each extractor imports its parsing library inside the function that uses it, so that
importing nbchat stays cheap.
"""
