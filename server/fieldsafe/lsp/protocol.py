"""The server's JSON-RPC protocol: pygls' LSP protocol with two safety nets.

* **No token on the wire.** Every message the server sends (diagnostics, showMessage, logMessage,
  ``fieldsafe/status``, command results and error replies, pygls' own "Error in server" texts) is
  checked for a known access token in any encoded form and scrubbed before it is written. The cloud
  module already builds its messages without the token; this catches what no one thought of.
* **Late replies.** A reply to a request the server stopped waiting for (cancelled) is dropped, not
  logged as a traceback (each superseded compile used to log one).
* **Shutdown with requests pending.** pygls 2.1.1's ``lsp_shutdown`` iterates the pending-request
  dict while cancelling them, and a cancel that completes a request removes it from that dict:
  "dictionary changed size during iteration" (-32603) and exit code 1. Here it iterates a copy.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)


class FieldsafeProtocol(LanguageServerProtocol):
    """See the module docstring."""

    def _send_data(self, data: Any) -> None:
        if data:
            body = json.dumps(data, default=self._serialize_message)
            # No token can exist in this process before the cloud module is loaded: do not load it for this. The
            # warm-up thread may be importing it right now (in sys.modules, not yet initialised): until its
            # functions exist, nothing can have registered a token through them either.
            cloud = sys.modules.get("fieldsafe.cloud")
            has_secret = getattr(cloud, "has_secret", None)
            if has_secret is not None and has_secret(body):
                try:
                    data = json.loads(cloud.redact(body))
                except ValueError:  # a token with a quote in it straddled JSON syntax: send nothing of it
                    log.error("dropped an outgoing message that held the access token")
                    return
        super()._send_data(data)

    def _handle_response(self, msg_id: Any, result: Any | None = None, error: Any | None = None) -> None:
        """A reply to a request we no longer wait for (a superseded compile cancelled its progress
        ``create`` while the client answered) is dropped quietly; pygls 2.1.1 would call
        ``set_result`` on the cancelled future and log an "Unable to handle message" traceback."""
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():
            self._request_futures.pop(msg_id, None)
            log.debug("dropped the reply to request %s: nobody waits for it any more", msg_id)
            return
        super()._handle_response(msg_id, result, error)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls' shutdown, iterating a copy of the pending requests (see the module docstring)."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None
