"""Measurements shared by bench/fuse/bench.sh and bench/overlay/local_bench.sh, one subcommand
each; prints one figure.

    python3 measure.py many DIR COUNT          # COUNT one-byte files file-00000... in DIR
    python3 measure.py stat PATH COUNT         # os.stat of PATH COUNT times: stats/s
    python3 measure.py ls DIR                  # ls -l of DIR, best of 3: ms
    python3 measure.py small DIR COUNT         # create+write+close+unlink: files/s
    python3 measure.py small-steps DIR COUNT   # the same, mean microseconds of each step
    python3 measure.py mbps MIB SECONDS        # MB/s (1 MB = 1,000,000 bytes)
    python3 measure.py iops FIO_JSON           # read IOPS of a fio --output-format=json run
    python3 measure.py busy STATUS_JSON        # exit 1 while uploads or copies are left
"""
import json
import os
import subprocess
import sys
import time


def many(directory, count):
    for index in range(count):
        with open(os.path.join(directory, f"file-{index:05d}"), "w") as file:
            file.write("x")


def stat_rate(path, count):
    start = time.perf_counter()
    for _ in range(count):
        os.stat(path)
    return f"{count / (time.perf_counter() - start):,.0f}"


def ls_best(directory):
    best = None
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(["ls", "-l", directory], stdout=subprocess.DEVNULL, check=True)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return f"{best * 1000:,.0f}"


def small_rate(directory, count):
    data = b"x" * 100
    start = time.perf_counter()
    for index in range(count):
        path = os.path.join(directory, f"small-{index}")
        with open(path, "wb") as file:
            file.write(data)
        os.unlink(path)
    return f"{count / (time.perf_counter() - start):,.0f}"


def small_steps(directory, count):
    data = b"x" * 100
    took = {"create": 0.0, "write": 0.0, "close": 0.0, "unlink": 0.0}
    for index in range(count):
        path = os.path.join(directory, f"small-{index}")
        start = time.perf_counter()
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        created = time.perf_counter()
        os.write(fd, data)
        written = time.perf_counter()
        os.close(fd)
        closed = time.perf_counter()
        os.unlink(path)
        took["create"] += created - start
        took["write"] += written - created
        took["close"] += closed - written
        took["unlink"] += time.perf_counter() - closed
    return " ".join(f"{step}={seconds / count * 1e6:.0f}us" for step, seconds in took.items())


def busy(status_path):
    metrics = json.load(open(status_path))["metrics"]
    uploads, copies = metrics["uploads"], metrics["copyOnRead"]
    return uploads["pending"] + uploads["active"] + copies["queued"] + copies["active"] > 0


def main(command, *args):
    if command == "many":
        many(args[0], int(args[1]))
    elif command == "stat":
        print(stat_rate(args[0], int(args[1])))
    elif command == "ls":
        print(ls_best(args[0]))
    elif command == "small":
        print(small_rate(args[0], int(args[1])))
    elif command == "small-steps":
        print(small_steps(args[0], int(args[1])))
    elif command == "mbps":
        print(f"{float(args[0]) * 1.048576 / float(args[1]):,.0f}")
    elif command == "iops":
        print(f"{json.load(open(args[0]))['jobs'][0]['read']['iops']:,.0f}")
    elif command == "busy":
        sys.exit(1 if busy(args[0]) else 0)
    else:
        sys.exit(f"measure.py: unknown command {command}")


if __name__ == "__main__":
    main(*sys.argv[1:])
