"""Start the test Mastra server (tests/mastra) for `make demo-mastra`; print its URL, then wait.

The same installer and launcher as the tests (tests/support/mastra.py): Node from the venv,
`npm ci` into ~/.cache once, LibSQL storage in the given directory. Stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.mastra import MastraServer, installed


def main() -> None:
    data = Path(sys.argv[1])
    data.mkdir(parents=True, exist_ok=True)
    server = MastraServer(home=installed(), data=data)
    server.start()
    print(server.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
