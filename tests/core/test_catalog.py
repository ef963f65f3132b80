"""The format catalog is the one description of each format: the rest derives from it."""

from __future__ import annotations

import importlib

from nbchat.core.extract import KINDS
from nbchat.core.extractors.catalog import FORMATS
from nbchat.core.extractors.formats import kind_from_name
from nbchat.core.extractors.problems import FORMAT_LABELS


def test_every_catalog_extension_names_its_format():
    for entry in FORMATS:
        for extension in entry.extensions:
            assert kind_from_name(f"report{extension.upper()}") == entry.kind


def test_kinds_and_labels_come_from_the_catalog_in_its_order():
    assert KINDS == tuple(entry.kind for entry in FORMATS)
    assert FORMAT_LABELS == {entry.kind: entry.label for entry in FORMATS}


def test_every_extractor_named_in_the_catalog_exists():
    for entry in FORMATS:
        module_name, function_name = entry.extractor.split(":")
        module = importlib.import_module(f"nbchat.core.extractors.{module_name}")
        assert callable(getattr(module, function_name)), entry
