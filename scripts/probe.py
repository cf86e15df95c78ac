#!/usr/bin/env python3
"""probe.py: the traffic side of Palisade's test lab (python3, standard library only).

Enforcement is judged on real packets. This tool is both ends of them:

  serve   --tcp PORT... --udp PORT... [--ready-file F]
          Echo servers on every address of the namespace, v4 and v6 (one dual-stack socket
          per port), one thread per connection. Exits 0 on SIGTERM or SIGINT.
  connect HOST PORT [--proto tcp|udp] [--timeout SECS]
          Exit 0 only if a fresh token came back from HOST:PORT within SECS; else exit 1
          and say why on stderr.
  check   [--timeout SECS] TARGET...
          Many connects at once, in parallel. TARGET is PROTO:HOST:PORT, an IPv6 HOST in
          brackets (tcp:[2001:db8::1]:8080). Prints "ok TARGET" or "fail TARGET reason" per
          target, in the order given; exit 0 if all were ok, else 1. PROTO icmp is an echo
          request (ping, over a raw socket: root) answered by HOST's kernel; its PORT is
          ignored and may be left out (icmp:198.18.0.1, icmp:[2001:db8::1]:0).
  watch   HOST PORT [--proto tcp|udp] [--interval SECS] [--duration SECS] [--stop-file F]
          A tight probe loop against a port that must stay closed: starts a new attempt
          every interval without waiting for the last, and counts every attempt that got
          through (a TCP handshake that completed or was refused by the peer, a UDP reply).
          Runs until the duration passes, the stop file appears, or SIGTERM; then prints
          {"attempts": N, "breaches": M, "first_breach_after": SECS|null} and exits 0.
          --timestamps F: also append, line-buffered, "start N T" when attempt N starts and
          "breach N TSTART TEND" when it got through, T in wall-clock seconds (time.time(),
          the clock `date +%s.%N` reads): to tell attempts begun after some moment (say,
          when a command returned) from those already under way.
  stream  HOST PORT [--interval SECS] [--duration SECS] [--status-file F]
          One long-lived TCP connection that echoes a message every interval; prints
          {"connected": bool, "sent": N, "echoed": M, "broken_after": SECS|null}.
          --status-file F: rewrite F (atomically, by rename) after every send and every echo
          with the live counters: sent/echoed messages, bytes_sent/bytes_echoed, and
          last_echo_arrived, the kernel's receive timestamp (SO_TIMESTAMPNS, wall clock) of
          the newest echoed byte, i.e. when it reached this namespace, not when it was read.
  matrix  [--timeout SECS] --src NAME=NETNS... --dst LABEL=TARGET...
          Runs `check` inside each source network namespace (via `ip netns exec`, so as
          root), all in parallel, and prints a table: rows are sources, columns the
          destinations, cells "ok" or "DENY". A destination whose LABEL names the source
          is shown as "-".
"""

import argparse
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

BUFFER = 65535


# ---------------------------------------------------------------- targets

def parse_target(text):
    """PROTO:HOST:PORT (HOST of v6 in brackets) -> (proto, host, port)."""
    try:
        proto, rest = text.split(":", 1)
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]:")
        else:
            host, _, port = rest.rpartition(":")
        proto = proto.lower()
        if proto == "icmp":
            if rest.startswith("["):
                host, _, port = rest[1:].partition("]")
                port = port.lstrip(":") or "0"
            elif rest.count(":") == 1:
                host, _, port = rest.partition(":")
            else:
                host, port = rest, "0"
            if not host:
                raise ValueError
            return proto, host, int(port)
        if proto not in ("tcp", "udp") or not host or not port:
            raise ValueError
        return proto, host, int(port)
    except ValueError:
        raise SystemExit("probe: target %r is not PROTO:HOST:PORT "
                         "(e.g. tcp:198.18.0.1:80, udp:[2001:db8::1]:53)" % text)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---------------------------------------------------------------- serve

def serve_tcp(port, stop):
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", port))
    listener.listen(128)

    def echo(conn):
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    data = conn.recv(BUFFER)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    def accept_loop():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return listener


def serve_udp(port, stop):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))

    def loop():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(BUFFER)
                sock.sendto(data, peer)
            except OSError:
                continue

    threading.Thread(target=loop, daemon=True).start()
    return sock


def cmd_serve(args):
    if not args.tcp and not args.udp:
        raise SystemExit("probe serve: give at least one --tcp or --udp port")
    stop = threading.Event()
    done = threading.Event()

    def on_signal(_signum, _frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sockets = [serve_tcp(p, stop) for p in args.tcp] + [serve_udp(p, stop) for p in args.udp]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, args.ready_file)
    while not done.wait(0.5):
        pass
    stop.set()
    for s in sockets:
        s.close()
    return 0


# ---------------------------------------------------------------- connect / check

def icmp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(host, token, timeout):
    """One ICMP (v4) or ICMPv6 echo request over a raw socket; None once the matching reply
    came back, else the reason. Every raw socket sees every reply, so replies are matched by
    identifier and payload."""
    deadline = time.monotonic() + timeout
    family = family_of(host)
    v6 = family == socket.AF_INET6
    ident = int.from_bytes(os.urandom(2), "big")
    request_type, reply_type = (128, 129) if v6 else (8, 0)
    header = bytes([request_type, 0, 0, 0]) + ident.to_bytes(2, "big") + (1).to_bytes(2, "big")
    packet = header + token
    if not v6:    # the kernel computes the ICMPv6 checksum itself
        checksum = icmp_checksum(packet)
        packet = packet[:2] + checksum.to_bytes(2, "big") + packet[4:]
    with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP) as s:
        s.sendto(packet, (host, 0))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout waiting for the echo reply"
            s.settimeout(left)
            data, _ = s.recvfrom(BUFFER)
            if not v6:
                data = data[(data[0] & 0x0F) * 4:]    # a raw v4 socket hands over the IP header
            if (len(data) >= 8 and data[0] == reply_type and int.from_bytes(data[4:6], "big") == ident
                    and data[8:] == token):
                return None


def attempt(proto, host, port, timeout):
    """One echo round trip. Returns None on success, else the reason it failed."""
    token = uuid.uuid4().hex.encode()
    deadline = time.monotonic() + timeout
    family = family_of(host)
    try:
        if proto == "icmp":
            return ping(host, token, timeout)
        if proto == "tcp":
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect((host, port))
                s.sendall(token)
                received = b""
                while len(received) < len(token):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return "timeout waiting for the echo"
                    s.settimeout(left)
                    chunk = s.recv(BUFFER)
                    if not chunk:
                        return "connection closed before the echo"
                    received += chunk
                return None if received == token else "echo did not match"
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            s.send(token)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout waiting for the echo"
                s.settimeout(left)
                data = s.recv(BUFFER)
                if data == token:
                    return None
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return e.strerror or str(e)


def cmd_connect(args):
    reason = attempt(args.proto, args.host, args.port, args.timeout)
    if reason is None:
        return 0
    print("probe: %s %s port %d: %s" % (args.proto, args.host, args.port, reason), file=sys.stderr)
    return 1


def check_all(targets, timeout):
    parsed = [parse_target(t) for t in targets]
    results = [None] * len(parsed)

    def run(i):
        results[i] = attempt(*parsed[i], timeout)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(parsed))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def cmd_check(args):
    results = check_all(args.targets, args.timeout)
    for target, reason in zip(args.targets, results):
        print("ok %s" % target if reason is None else "fail %s %s" % (target, reason))
    sys.stdout.flush()
    return 0 if all(r is None for r in results) else 1


# ---------------------------------------------------------------- watch

def cmd_watch(args):
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    family = family_of(args.host)
    address = (args.host, args.port)
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    attempts = 0
    breaches = 0
    first_breach = None
    pending = {}    # socket -> time it was opened (tcp)
    udp = None
    # --timestamps: wall-clock start of each attempt still open, for the "breach" lines.
    log = open(args.timestamps, "a", buffering=1) if args.timestamps else None
    opened_at = {}  # tcp socket -> (attempt number, wall-clock start)
    udp_sent_at = {}  # udp attempt number -> wall-clock start

    def log_breach(key):
        if log is None:
            return
        if isinstance(key, int):
            number, start = key, udp_sent_at.pop(key, None)
        else:
            number, start = opened_at.get(key, (None, None))
        log.write("breach %s %s %.6f\n" % (number if number is not None else "?",
                                            "%.6f" % start if start is not None else "?", time.time()))

    def udp_replies():
        """Reads every waiting UDP reply; yields the attempt number each echoes (or None)."""
        while True:
            data, _ = udp.recvfrom(BUFFER)
            number = None
            if data.startswith(b"watch "):
                try:
                    number = int(data[6:])
                except ValueError:
                    pass
            yield number
    if args.proto == "udp":
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.setblocking(False)
        selector.register(udp, selectors.EVENT_READ)

    def breach(now):
        nonlocal breaches, first_breach
        breaches += 1
        if first_breach is None:
            first_breach = now - started

    next_attempt = started
    while not stopping.is_set():
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        if args.stop_file and os.path.exists(args.stop_file):
            break
        if now >= next_attempt:
            attempts += 1
            next_attempt = now + args.interval
            if log is not None:
                wall = time.time()
                log.write("start %d %.6f\n" % (attempts, wall))
                if udp is not None:
                    udp_sent_at[attempts] = wall
                    udp_sent_at.pop(attempts - 10000, None)
            if udp is not None:
                try:
                    udp.sendto(b"watch %d" % attempts, address)
                except OSError:
                    pass
            else:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setblocking(False)
                if log is not None:
                    opened_at[s] = (attempts, time.time())
                s.connect_ex(address)
                pending[s] = now
                selector.register(s, selectors.EVENT_WRITE)
        for key, _ in selector.select(timeout=max(0.0, min(args.interval, next_attempt - time.monotonic()))):
            s = key.fileobj
            now = time.monotonic()
            if s is udp:
                try:
                    for number in udp_replies():
                        breach(now)
                        log_breach(number if number is not None else -1)
                except OSError:
                    pass
                continue
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            # Connected, or refused by the peer's kernel: either way a packet got through.
            if error in (0, 111):
                breach(now)
                log_breach(s)
            selector.unregister(s)
            pending.pop(s, None)
            opened_at.pop(s, None)
            s.close()
        # Give up on attempts older than the timeout so a SYN is never retransmitted late.
        now = time.monotonic()
        for s, opened in list(pending.items()):
            if now - opened > args.timeout:
                selector.unregister(s)
                pending.pop(s)
                opened_at.pop(s, None)
                s.close()
    # A last look for replies to the final attempts.
    deadline = time.monotonic() + min(args.timeout, 0.3)
    while time.monotonic() < deadline and (pending or udp is not None):
        for key, _ in selector.select(timeout=0.05):
            s = key.fileobj
            if s is udp:
                try:
                    for number in udp_replies():
                        breach(time.monotonic())
                        log_breach(number if number is not None else -1)
                except OSError:
                    pass
                continue
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in (0, 111):
                breach(time.monotonic())
                log_breach(s)
            selector.unregister(s)
            pending.pop(s, None)
            s.close()
    for s in pending:
        s.close()
    if log is not None:
        log.close()
    print(json.dumps({"attempts": attempts, "breaches": breaches,
                      "first_breach_after": first_breach}))
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------- stream

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)    # Linux; SCM_TIMESTAMPNS is the same


def write_status(path, status):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(json.dumps(status) + "\n")
    os.rename(tmp, path)


def stream_recv(s, status):
    """recv that, for --status-file, also keeps the kernel's arrival time of what it read."""
    if status is None:
        return s.recv(BUFFER)
    data, ancillary, _, _ = s.recvmsg(BUFFER, socket.CMSG_SPACE(16))
    arrived = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanoseconds = int.from_bytes(payload[:8], sys.byteorder), int.from_bytes(payload[8:16], sys.byteorder)
            if seconds:
                arrived = seconds + nanoseconds / 1e9
    if data:
        status["bytes_echoed"] += len(data)
        status["last_echo_arrived"] = arrived if arrived is not None else time.time()
        status["last_echo_read"] = time.time()
    return data


def cmd_stream(args):
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    started = time.monotonic()
    result = {"connected": False, "sent": 0, "echoed": 0, "broken_after": None}
    status = None
    if args.status_file:
        status = {"connected": False, "sent": 0, "echoed": 0, "bytes_sent": 0, "bytes_echoed": 0,
                  "last_sent": None, "last_echo_arrived": None, "last_echo_read": None, "broken": False}
        write_status(args.status_file, status)
    try:
        s = socket.create_connection((args.host, args.port), timeout=args.timeout)
    except OSError:
        print(json.dumps(result))
        return 1
    result["connected"] = True
    if status is not None:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        status["connected"] = True
        write_status(args.status_file, status)
    with s:
        while not stopping.is_set():
            if args.duration and time.monotonic() - started >= args.duration:
                break
            message = b"stream %d\n" % result["sent"]
            try:
                s.settimeout(args.timeout)
                s.sendall(message)
                result["sent"] += 1
                if status is not None:
                    status["sent"] += 1
                    status["bytes_sent"] += len(message)
                    status["last_sent"] = time.time()
                    write_status(args.status_file, status)
                received = b""
                while len(received) < len(message):
                    chunk = stream_recv(s, status)
                    if not chunk:
                        raise OSError("closed")
                    received += chunk
                result["echoed"] += 1
                if status is not None:
                    status["echoed"] += 1
                    write_status(args.status_file, status)
            except OSError:
                result["broken_after"] = time.monotonic() - started
                if status is not None:
                    status["broken"] = True
                    write_status(args.status_file, status)
                break
            stopping.wait(args.interval)
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- matrix

def cmd_matrix(args):
    sources = [s.split("=", 1) for s in args.src]
    destinations = [d.split("=", 1) for d in args.dst]
    for label, target in destinations:
        parse_target(target)
    me = os.path.abspath(__file__)
    outputs = {}

    def run(name, netns):
        targets = [t for label, t in destinations if label.split(":")[0] != name]
        command = ["ip", "netns", "exec", netns, sys.executable, me, "check",
                   "--timeout", str(args.timeout)] + targets
        done = subprocess.run(command, capture_output=True, text=True)
        outputs[name] = {}
        for line in done.stdout.splitlines():
            verdict, target = line.split()[:2]
            outputs[name][target] = "ok" if verdict == "ok" else "DENY"

    threads = [threading.Thread(target=run, args=(n, ns)) for n, ns in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    headers = [label for label, _ in destinations]
    width = max(len(h) for h in headers + ["from \\ to"]) + 1
    first = max(len(n) for n, _ in sources + [("from \\ to", "")]) + 1
    print("from \\ to".ljust(first) + "".join(h.rjust(width) for h in headers))
    for name, _ in sources:
        row = name.ljust(first)
        for label, target in destinations:
            cell = "-" if label.split(":")[0] == name else outputs[name].get(target, "?")
            row += cell.rjust(width)
        print(row)
    return 0


# ---------------------------------------------------------------- main

def main(argv):
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="echo servers")
    p.add_argument("--tcp", type=int, nargs="*", default=[])
    p.add_argument("--udp", type=int, nargs="*", default=[])
    p.add_argument("--ready-file")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("connect", help="one echo round trip")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(run=cmd_connect)

    p = sub.add_parser("check", help="many round trips in parallel")
    p.add_argument("targets", nargs="+")
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("watch", help="tight probe loop against a closed port")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=0.5)
    p.add_argument("--duration", type=float, default=0)
    p.add_argument("--stop-file")
    p.add_argument("--timestamps", metavar="FILE",
                   help="append \"start N T\" and \"breach N TSTART TEND\" lines (wall clock)")
    p.set_defaults(run=cmd_watch)

    p = sub.add_parser("stream", help="one long-lived echo connection")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=0)
    p.add_argument("--status-file", metavar="FILE", help="live counters, rewritten after every send and echo")
    p.set_defaults(run=cmd_stream)

    p = sub.add_parser("matrix", help="connectivity table across namespaces")
    p.add_argument("--src", nargs="+", required=True, metavar="NAME=NETNS")
    p.add_argument("--dst", nargs="+", required=True, metavar="LABEL=TARGET")
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(run=cmd_matrix)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
