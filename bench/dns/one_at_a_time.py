#!/usr/bin/env python3
"""Sends the `<name> A` lines of a file to a DNS server one at a time over UDP, each after
the previous answer: prints the seconds taken, fails unless every answer has the expected
RCODE. (dnsperf -q 1 sometimes idles for seconds between an answer and its next query,
which would be timed as the server's.)
usage: one_at_a_time.py PORT FILE RCODE   (RCODE: NOERROR or NXDOMAIN)"""
import socket
import struct
import sys
import time

RCODES = {"NOERROR": 0, "NXDOMAIN": 3}


def query(qid, name):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)


def main():
    port, path, expected = int(sys.argv[1]), sys.argv[2], RCODES[sys.argv[3]]
    names = [line.split()[0] for line in open(path) if line.strip()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.connect(("127.0.0.1", port))
    start = time.perf_counter()
    for i, name in enumerate(names):
        qid = i & 0xFFFF
        sock.send(query(qid, name))
        while True:
            reply = sock.recv(4096)
            if struct.unpack(">H", reply[:2])[0] == qid:
                break
        rcode = reply[3] & 0xF
        if rcode != expected:
            sys.exit(f"{name}: RCODE {rcode}, expected {expected}")
    print(f"{time.perf_counter() - start:.3f}")


main()
