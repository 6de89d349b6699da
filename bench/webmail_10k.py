"""10,000 messages in one folder, read over HTTP: fills INBOX over IMAP
(pipelined APPENDs with LITERAL+), logs in to web mail, then times the
first list page, a message, the last page and a search (median of 5 runs
each, after one warm-up), and prints the server's resident memory.
Usage: webmail_10k.py IMAP_PORT HTTP_PORT SERVER_PID [COUNT]"""
import imaplib, os, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from webmail import Client  # noqa: E402

imap_port, http_port, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
count = int(sys.argv[4]) if len(sys.argv) > 4 else 10000


def mem():
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            fields[k] = v.strip()
    return f"RSS {fields['VmRSS']}, peak {fields['VmHWM']}"


m = imaplib.IMAP4("127.0.0.1", imap_port)
m.login("bench@example.test", "pw")
sock = m.socket()
start = time.time()
batch = 200
for first in range(0, count, batch):
    out = []
    for i in range(first, min(first + batch, count)):
        msg = (b"From: Sender %d <s%d@outside.test>\r\nTo: bench@example.test\r\nSubject: message number %d\r\n"
               b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%d@outside.test>\r\n\r\n" % (i, i, i, i)
               + b"body line\r\n" * 20)
        out.append(b"A%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(msg), msg))
    sock.sendall(b"".join(out))
    want = b"A%d OK" % (min(first + batch, count) - 1)
    buf = b""
    while want not in buf:
        chunk = sock.recv(65536)
        assert chunk, buf[-200:]
        buf += chunk
print(f"APPEND x{count}: {time.time() - start:.1f} s; {mem()}")
m.logout()

c = Client(http_port)
c.login("bench@example.test", "pw")


def timed(label, path, check):
    c.get(path)
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        r = c.get(path)
        runs.append(time.perf_counter() - t)
        assert r.status == 200 and check(r.text), (label, r.status)
    print(f"{label}: median {statistics.median(runs) * 1000:.1f} ms (min {min(runs) * 1000:.1f}); {mem()}")


last = (count - 1) // 50
timed("list, first page (50 of %d)" % count, "/folder?name=INBOX", lambda t: f"message number {count - 1}" in t)
timed("open a message", f"/message?folder=INBOX&uid={count // 2}", lambda t: f"message number {count // 2 - 1}" in t)
timed("list, last page", f"/folder?name=INBOX&page={last}", lambda t: "message number 0<" in t)
timed("search (subject, from, to, text over %d)" % count, "/folder?name=INBOX&q=number+9999",
      lambda t: "message number 9999" in t or count <= 9999)
