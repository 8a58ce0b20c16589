"""A static HTTP server for the tests whose speed the tests can turn down.

Serves a directory like ``python3 -m http.server``; while the file named by
``--slow-flag`` exists it sends 16 KiB every 0.2 s (80 KiB/s), so that a
test can catch a mirror update in the middle of a download.
"""

import argparse
import functools
import http.server
import shutil
import time
from pathlib import Path

CHUNK = 16 * 1024


class ThrottledHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that slows down while the flag file exists."""

    slow_flag: Path = Path("/nonexistent")

    def copyfile(self, source, outputfile):
        if not self.slow_flag.exists():
            shutil.copyfileobj(source, outputfile)
            return
        while chunk := source.read(CHUNK):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--slow-flag", default="/run/upstream-slow")
    args = parser.parse_args()
    ThrottledHandler.slow_flag = Path(args.slow_flag)
    handler = functools.partial(ThrottledHandler, directory=args.directory)
    with http.server.ThreadingHTTPServer(("", args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
