"""10,000 messages in one folder: fills INBOX over IMAP (pipelined APPENDs
with LITERAL+), then times SELECT, FETCH 1:* (FLAGS ENVELOPE) and a SEARCH,
and prints the server's resident memory (VmRSS, VmHWM) after each step.
Usage: imap_10k.py IMAP_PORT SERVER_PID [COUNT]"""
import imaplib, socket, ssl, sys, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE

def mem():
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            fields[k] = v.strip()
    return f"RSS {fields['VmRSS']}, peak {fields['VmHWM']}"

m = imaplib.IMAP4("127.0.0.1", port)
m.starttls(CTX)
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
    assert b" NO " not in buf and b" BAD " not in buf, buf[:500]
print(f"APPEND x{count}: {time.time() - start:.1f} s; {mem()}")

t = time.time(); typ, data = m.select("INBOX"); assert int(data[0]) == count, data
print(f"SELECT: {time.time() - t:.3f} s; {mem()}")
t = time.time(); typ, data = m.fetch("1:*", "(FLAGS ENVELOPE)")
n = sum(1 for d in data if d and b"ENVELOPE" in (d[0] if isinstance(d, tuple) else d))
assert n == count, n
print(f"FETCH 1:* (FLAGS ENVELOPE): {time.time() - t:.3f} s; {mem()}")
t = time.time(); typ, data = m.search(None, "UNSEEN"); assert len(data[0].split()) == count
print(f"SEARCH UNSEEN: {time.time() - t:.3f} s; {mem()}")
t = time.time(); typ, data = m.search(None, "SUBJECT", '"number 9999"'); assert data[0].split()[-1] == str(count).encode() or data
print(f"SEARCH SUBJECT (reads every header block): {time.time() - t:.3f} s; {mem()}")
t = time.time(); typ, data = m.search(None, "BODY", "nomatch"); assert data == [b""], data
print(f"SEARCH BODY (reads every message): {time.time() - t:.3f} s; {mem()}")
m.logout()
