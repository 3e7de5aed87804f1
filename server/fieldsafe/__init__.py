"""fieldsafe: build Particle firmware for the Device OS your devices in the field actually run.

One package, two faces over one engine: the ``fieldsafe`` CLI and ``fieldsafe lsp`` (a language
server). The domain modules (``versions``, ``platforms``, ``modules``, ``compat``, ``gccout``,
``project``, ``apilint``) import nothing from editors or the network.
"""

__version__ = "0.1.0"
