"""The process that hosts the local Sail server: ``python -m runner.sail_server PORT_FILE`` (see runner/sail.py).

Sail's own command line listens on the port it is given; its Python API binds a free one and says which. Hosting
the server here lets the runner start it on a free port without a race and learn that port from a file. Sail reads
its settings (local-cluster mode, workers, catalog) from the environment the runner gives this process.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

# Where the server and the metastore listen (runner/sail.py uses the same): loopback, this machine only.
HOST = "127.0.0.1"


def main(arguments: list[str]) -> int:
    """Start the server, write its port, and serve until SIGTERM or SIGINT; then stop it and remove the port file."""
    from pysail.spark import SparkConnectServer

    port_file = Path(arguments[0])
    stopping = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = SparkConnectServer(ip=HOST, port=0)
    server.start(background=True)
    address = server.listening_address
    if address is None:
        print("the Sail server did not start listening", file=sys.stderr)
        return 1
    scratch = port_file.with_name(port_file.name + ".tmp")
    scratch.write_text(f"{address[1]}\n")
    scratch.replace(port_file)
    print(f"Sail's Spark Connect server listens on {address[0]}:{address[1]}", file=sys.stderr, flush=True)
    while not stopping.wait(1.0):
        pass
    server.stop()
    port_file.unlink(missing_ok=True)
    print("Sail's Spark Connect server stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
