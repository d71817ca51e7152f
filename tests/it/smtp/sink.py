#!/usr/bin/env python3
"""A scriptable SMTP sink for cpor-worker's tests and bench (aiosmtpd; pip install aiosmtpd).

Listens on 127.0.0.1:PORT and writes each accepted message to DIR/NNNNNN.eml (raw bytes as
received) with DIR/NNNNNN.rcpt (envelope recipients, one a line). It can misbehave on purpose:
  --fail-first N   answer "451 4.3.0" to the DATA of the first N messages (then recover)
  --reject ADDR    answer "550 5.1.1" to RCPT TO:<ADDR> (repeatable)
  --discard        accept but write nothing (for benchmarks)
  --tls-cert F --tls-key F   serve TLS with this certificate: STARTTLS (required), or with
                   --implicit-tls the whole connection in TLS (smtps)
  --auth USER:PASS require AUTH with these credentials (only offered over TLS)
Runs until killed (SIGTERM/SIGINT).
"""
import argparse
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, folder, fail_first, reject, discard):
        self.folder = folder
        self.fail_left = fail_first
        self.reject = {a.lower() for a in reject}
        self.discard = discard
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return "451 4.3.0 Temporary failure, try again later"
            self.count += 1
            n = self.count
        if not self.discard:
            base = os.path.join(self.folder, f"{n:06d}")
            with open(base + ".rcpt.tmp", "w") as f:
                f.write("\n".join(envelope.rcpt_tos) + "\n")
            os.rename(base + ".rcpt.tmp", base + ".rcpt")
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--discard", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    handler = Handler(a.dir, a.fail_first, a.reject, a.discard)
    kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.implicit_tls:
            kwargs["ssl_context"] = ctx
        else:
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = True
    if a.auth:
        from aiosmtpd.smtp import AuthResult
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "login", b"") == user.encode() and \
                getattr(auth_data, "password", b"") == password.encode()
            return AuthResult(success=ok)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
    controller = Controller(handler, hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on 127.0.0.1:{a.port}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
