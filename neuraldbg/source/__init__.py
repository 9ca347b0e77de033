"""Source documents and their index (tree-sitter stays inside this package).

- ``model``: the SourceIndex dataclasses the rest of neuraldbg reads.
- ``document.Document``: an open buffer; LSP edits, incremental re-index,
  ``changed_functions()``.
- ``index``: ``index_text``, ``index_tree``, ``find_test_calls``.
- ``calls``: ``parse_call``, ``CallError``, ``default_call_for``.
- ``positions``: LSP position encodings and line starts.
- ``sanitize``: ``??`` holes and lone CRs made parseable.
- ``extract`` / ``syntax`` / ``doctests`` / ``treesitter``: internals.

Submodules are not imported here, so that importing ``neuraldbg.source.model``
does not load tree-sitter.
"""
