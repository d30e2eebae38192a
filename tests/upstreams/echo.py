"""The Python upstream of tests/differential.rs: the standard library's http.server, answering
every request with one JSON line saying what it routes on.

Why unquote + posixpath.normpath: that is what SimpleHTTPRequestHandler.translate_path does
to map a request onto files (drop "?query" and "#fragment", percent-decode, normalise "."
and ".." away, keep a trailing "/"), and it is the only routing http.server itself has.

Usage: python3 echo.py PORT
"""

import json
import posixpath
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


class Echo(BaseHTTPRequestHandler):
    # http.server dispatches on a do_<METHOD> attribute: every method gets the echo.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.echo
        raise AttributeError(name)

    def echo(self):
        path, _, query = self.path.partition("?")
        path = path.split("#", 1)[0]
        trailing_slash = path.rstrip().endswith("/")
        # translate_path uses errors="surrogatepass"; "replace" gives the same U+FFFD for
        # bytes that are not UTF-8 and keeps the answer valid JSON.
        path = posixpath.normpath(urllib.parse.unquote(path))
        if trailing_slash and not path.endswith("/"):
            path += "/"
        override = next(
            (self.headers[h] for h in OVERRIDE_HEADERS if self.headers[h] is not None), None
        )
        if override is None:
            # Rails/Laravel/Symfony-style "_method": whether the app honours it is not
            # something a gate in front can know, so it is reported like the headers.
            values = urllib.parse.parse_qs(query.split("#", 1)[0]).get("_method")
            override = values[0] if values else None
        body = (
            json.dumps(
                {
                    "server": "python",
                    "method": self.command,
                    "path": path,
                    "raw": self.path,
                    "override": override,
                    "role": self.headers["X-Keysmith-Role"],
                }
            )
            + "\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
