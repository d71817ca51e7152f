"""Python peer of benches/smtp.rs: sends the same message bytes to the same SMTP sink with
smtplib, one thread per connection, each connection opened (and EHLO said) before the clock
starts and reused for all of that thread's messages, as the Rust side's warmed pool is.

    python3 benches/peer_smtp.py --port P --message FILE --count N --connections C

Prints one line: `sent=N failures=F secs=S`.
"""

import argparse
import smtplib
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--message", required=True, help="file with the formatted message (CRLF)")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--sender", default="noreply@cpor.example")
    ap.add_argument("--recipient", default="kund@example.se")
    args = ap.parse_args()

    with open(args.message, "rb") as f:
        message = f.read()
    # lettre announces 8-bit content the same way.
    options = [] if message.isascii() else ["BODY=8BITMIME"]
    c = max(1, args.connections)
    counts = [args.count // c + (1 if i < args.count % c else 0) for i in range(c)]
    failures = [0] * c
    start = threading.Barrier(c + 1)

    def worker(i: int) -> None:
        smtp = smtplib.SMTP(args.host, args.port, timeout=30)
        smtp.ehlo()
        start.wait()
        for _ in range(counts[i]):
            try:
                smtp.sendmail(args.sender, [args.recipient], message, mail_options=options)
            except smtplib.SMTPException:
                failures[i] += 1
        smtp.quit()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(c)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - began
    print(f"sent={args.count} failures={sum(failures)} secs={secs:.6f}", flush=True)


if __name__ == "__main__":
    main()
