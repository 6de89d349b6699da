#!/usr/bin/env python3
"""SORT, THREAD and QRESYNC on one big folder, for any IMAP server: fills
INBOX of a fresh account with COUNT generated messages (the same ones for
every server: a fixed seed; dates spread over a year, subjects with Re:/Fwd:
prefixes, reply chains with In-Reply-To/References), then times, in ms:

  UID SORT (DATE), UID SORT (SUBJECT), UID THREAD REFERENCES   (each run
      3 times: the first, and the best of the other two, since a server may
      keep sort keys after the first time)
  SELECT INBOX (QRESYNC (...)) after 100 flag changes and 10 expunges made
      by another session since the client last saw the folder

and checks each answer (every UID sorted, threads cover every message, the
QRESYNC answer has 100 FETCH and VANISHED (EARLIER) of the 10).

Usage: imap_folder_ops.py PORT USER PASSWORD [COUNT]   (plain-text login on
loopback; prints one line "name first_ms warm_ms" per operation, and the
fill time).
"""
import random
import re
import socket
import sys
import time

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 10000


class Imap:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.n = 0
        self.line()  # greeting
        self.run(f'LOGIN "{user}" "{password}"')

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "connection closed"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def until(self, tag):
        """Lines up to the tagged reply (literals are inlined: the commands
        used here return none that matter)."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                need = int(m.group(1))
                while len(self.buf) < need:
                    self.buf += self.sock.recv(1 << 20)
                line += self.buf[:need]
                self.buf = self.buf[need:]
                line += self.line()
            if line.startswith(tag + b" "):
                assert line.split()[1] == b"OK", line
                return lines
            lines.append(line)

    def run(self, command):
        self.n += 1
        tag = b"c%d" % self.n
        self.sock.sendall(tag + b" " + command.encode() + b"\r\n")
        return self.until(tag)

    def timed(self, command):
        t = time.perf_counter()
        lines = self.run(command)
        return (time.perf_counter() - t) * 1000, lines

    def close(self):
        self.run("LOGOUT")
        self.sock.close()


def messages():
    rng = random.Random(4242)
    start = 1764547200  # 2026-01-01
    ids = []
    for i in range(count):
        when = time.gmtime(start + rng.randrange(365 * 86400))
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", when)
        topic = rng.randrange(count // 5)
        prefix = rng.choice(["", "", "Re: ", "RE: ", "Fwd: ", "Re: Re: "])
        mid = f"<m{i}.{topic}@bench.test>"
        refs = ""
        if ids and rng.random() < 0.6:
            parent = ids[rng.randrange(max(0, len(ids) - 500), len(ids))]
            refs = f"In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
        ids.append(mid)
        yield (
            f"From: Sender {i % 97} <s{i % 97}@outside.test>\r\nTo: {user}\r\n"
            f"Subject: {prefix}topic {topic} of the bench\r\nDate: {date}\r\n"
            f"Message-ID: {mid}\r\n{refs}\r\n" + "body line\r\n" * 20
        ).encode()


def fill(conn):
    t = time.perf_counter()
    batch = []
    sent = 0
    for msg in messages():
        conn.n += 1
        batch.append(b"c%d APPEND INBOX {%d+}\r\n%s\r\n" % (conn.n, len(msg), msg))
        sent += 1
        if len(batch) == 200 or sent == count:
            conn.sock.sendall(b"".join(batch))
            for k in range(conn.n - len(batch) + 1, conn.n + 1):
                conn.until(b"c%d" % k)
            batch = []
    return time.perf_counter() - t


def uids(lines, key):
    return [int(x) for line in lines if line.startswith(b"* " + key) for x in line.split()[2:]]


def main():
    conn = Imap()
    conn.run("SELECT INBOX")
    seconds = fill(conn)
    print(f"fill: {count} APPENDs in {seconds:.1f} s")
    conn.close()

    conn = Imap()
    lines = conn.run("SELECT INBOX")
    assert any(line.startswith(b"* %d EXISTS" % count) for line in lines), lines
    for name, command, check in [
        ("SORT DATE", "UID SORT (DATE) UTF-8 ALL", b"SORT"),
        ("SORT SUBJECT", "UID SORT (SUBJECT) UTF-8 ALL", b"SORT"),
        ("THREAD REFERENCES", "UID THREAD REFERENCES UTF-8 ALL", b"THREAD"),
    ]:
        runs = []
        for _ in range(3):
            ms, lines = conn.timed(command)
            runs.append(ms)
            if check == b"SORT":
                got = uids(lines, b"SORT")
                assert sorted(got) == sorted(set(got)) and len(got) == count, len(got)
            else:
                body = b"".join(line for line in lines if line.startswith(b"* THREAD"))
                assert len(re.findall(rb"\d+", body)) == count, "threads miss messages"
        print(f"{name}: {runs[0]:.0f} {min(runs[1:]):.0f}")
    conn.close()

    # What a QRESYNC client last saw.
    conn = Imap()
    conn.run("ENABLE QRESYNC")
    lines = conn.run("SELECT INBOX")
    text = b" ".join(lines)
    validity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
    # Another session changes 100 messages' flags and expunges 10 others.
    rng = random.Random(7)
    picked = rng.sample(range(1, count + 1), 110)
    changed, gone = picked[:100], picked[100:]
    for i, uid in enumerate(changed):
        flag = "\\Seen" if i % 2 else "\\Flagged"
        conn.run(f"UID STORE {uid} +FLAGS ({flag})")
    conn.run(f"UID STORE {','.join(map(str, gone))} +FLAGS (\\Deleted)")
    conn.run(f"UID EXPUNGE {','.join(map(str, gone))}")
    conn.close()

    conn = Imap()
    conn.run("ENABLE QRESYNC")
    runs = []
    for _ in range(3):
        ms, lines = conn.timed(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
        runs.append(ms)
        fetches = sum(1 for line in lines if re.match(rb"\* \d+ FETCH", line))
        vanished = [line for line in lines if line.startswith(b"* VANISHED (EARLIER)")]
        assert fetches == 100, fetches
        assert vanished, lines[:5]
    print(f"QRESYNC SELECT: {runs[0]:.0f} {min(runs[1:]):.0f}")
    conn.close()


main()
