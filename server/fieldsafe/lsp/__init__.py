"""The fieldsafe language server (``fieldsafe lsp``): pygls wiring over the domain modules.

``server.py`` builds the server and registers features; ``scheduler.py`` holds the flycheck-style
compile scheduling; ``diagnostics.py``, ``actions.py``, ``commands.py``, ``hover.py`` convert findings
and facts into LSP objects. No domain decisions live here (see docs/lsp.md).
"""
