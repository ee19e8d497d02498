#!/usr/bin/env python3
"""A Riak outage of minutes under a working mount, as operators live through one.

Starts `dist/riakfs serve-riak --data DIR` (its own process) and a `--foreground` mount of
PRESET over a source with legacy files, warms up (every legacy file read, a few hundred
files written, two large files), then takes Riak away for --outage-s seconds (`stop`:
SIGSTOP, a hung node; `kill`: SIGKILL, restarted later on the same port and data) while a
workload goes on in rounds: small files created, overwritten, renamed, removed and read,
legacy files read, `ls -R`, `df`, statfs, stat, a listing, a mkdir now and then, and a large
file (--large-mb) written again every --large-every seconds. Every operation is timed (SLOW
lines past SOAK_LIMIT seconds, default 11). Every 10 s: RSS and peak RSS of the mount, the
spool's size, the journal's, and `riakfs status` (pending uploads, failed attempts).

Then (--end): `resume` brings Riak back and times how long until the log says so and until
no upload is pending; `umount` unmounts during the outage (drain timeout 5 s), brings Riak
back and mounts again (the journal's replay); `sigkill` kills the mount, brings Riak back
and mounts again. Last, every file the workload left is read through the mount and from
Riak (bench/overlay/riak_tree.ts), and Riak must hold nothing else below /w. The report
(BASE/report.json, and printed): errors and slowest time by operation during the outage,
the samples, recovery times, what differs, and the mount's log lines by message.

    sudo python3 bench/overlay/outage_soak.py --preset drain --port 19522 \
        --base /tmp/soak-drain --outage-s 240 --outage stop
"""
import argparse, atexit, hashlib, json, os, random, signal, subprocess, sys, threading, time, errno, shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("RIAKFS", os.path.join(ROOT, "dist/riakfs"))
DENO = os.environ.get("DENO", "deno")

p = argparse.ArgumentParser()
p.add_argument("--preset", required=True)
p.add_argument("--outage", choices=["stop", "kill"], default="stop")
p.add_argument("--outage-s", type=float, default=180)
p.add_argument("--port", type=int, required=True)
p.add_argument("--base", required=True)
p.add_argument("--large-mb", type=int, default=200)
p.add_argument("--large-every", type=float, default=30)
p.add_argument("--small-per-round", type=int, default=40)
p.add_argument("--legacy", type=int, default=300)
p.add_argument("--end", choices=["resume", "umount", "sigkill"], default="resume")
p.add_argument("--spool", default=None)
p.add_argument("--extra", default="")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--keep", action="store_true")
args = p.parse_args()
if shutil.which(DENO) is None:
    raise SystemExit(f"{DENO} not found (it reads Riak's tree at the end): put it on PATH or set DENO")
rnd = random.Random(args.seed)
base = args.base
shutil.rmtree(base, ignore_errors=True)
os.makedirs(base)
src, mnt, data, run = (os.path.join(base, n) for n in ("source", "mnt", "riak", "run"))
spool = args.spool or os.path.join(base, "spool")
for d in (src, mnt, data, run):
    os.makedirs(d, exist_ok=True)
node = f"127.0.0.1:{args.port}"
bucket = "soak"
logf = os.path.join(base, "mount.log")
T0 = time.time()
report = {"preset": args.preset, "outage": args.outage, "outage_s": args.outage_s}


def say(*a):
    print(f"[{time.time()-T0:7.1f}] " + " ".join(str(x) for x in a), flush=True)


# ---------- Riak server ----------
riak = None


def start_riak():
    global riak
    riak = subprocess.Popen([BIN, "serve-riak", "--data", data, "--listen", node],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = riak.stdout.readline()
    assert "listening" in line, line
    threading.Thread(target=lambda: [None for _ in riak.stdout], daemon=True).start()


# ---------- legacy source ----------
legacy = {}
if args.preset != "riak":
    os.makedirs(os.path.join(src, "legacy/a"), exist_ok=True)
    os.makedirs(os.path.join(src, "legacy/b"), exist_ok=True)
    for i in range(args.legacy):
        rel = f"legacy/{'ab'[i % 2]}/f{i}"
        b = rnd.randbytes(rnd.randint(100, 30000))
        open(os.path.join(src, rel), "wb").write(b)
        legacy["/" + rel] = hashlib.sha256(b).hexdigest()

start_riak()
mount_cmd = [BIN, "mount", "--preset", args.preset, "--foreground", "--riak", node, "--bucket", bucket,
             "--spool", spool, "--run-dir", run, "--log-format", "json"] + (args.extra.split() if args.extra else []) + [src, mnt]
mountp = None


def start_mount():
    global mountp
    mountp = subprocess.Popen(mount_cmd, stdout=subprocess.DEVNULL, stderr=open(logf, "a"))
    for _ in range(1500):
        if os.path.ismount(mnt):
            return
        if mountp.poll() is not None:
            raise SystemExit(f"mount exited {mountp.returncode}: {open(logf).read()[-3000:]}")
        time.sleep(0.02)
    raise SystemExit("mount did not come up")


def status():
    t = time.time()
    r = subprocess.run([BIN, "status", "--json", "--run-dir", run, mnt], capture_output=True, text=True)
    dt = time.time() - t
    try:
        return json.loads(r.stdout), dt
    except Exception:
        return {"error": r.stderr.strip()}, dt


def rss():
    try:
        s = open(f"/proc/{mountp.pid}/status").read()
        g = lambda k: int(s.split(k + ":")[1].split()[0])
        return g("VmRSS") // 1024, g("VmHWM") // 1024
    except Exception:
        return None, None


def du(path):
    r = subprocess.run(["du", "-sm", path], capture_output=True, text=True)
    return int(r.stdout.split()[0]) if r.returncode == 0 else None


def journal_size():
    try:
        return os.path.getsize(os.path.join(spool, "journal"))
    except OSError:
        return None


# ---------- timed operations ----------
ops = {}  # name -> {n, max, errors:{errno:count}, slow:[...]}
LIMIT = float(os.environ.get("SOAK_LIMIT", "11"))


def timed(name, fn, expect_ok=True):
    t = time.time()
    err = None
    result = None
    try:
        result = fn()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
    except subprocess.CalledProcessError as e:
        err = f"exit{e.returncode}"
    dt = time.time() - t
    o = ops.setdefault(name, {"n": 0, "max": 0, "total": 0, "errors": {}, "slow": 0})
    o["n"] += 1
    o["total"] += dt
    o["max"] = max(o["max"], dt)
    if dt > LIMIT:
        o["slow"] += 1
        say(f"SLOW {name} {dt:.1f}s err={err}")
    if err:
        o["errors"][err] = o["errors"].get(err, 0) + 1
    return err, result


# ---------- model of /w ----------
model = {}  # path -> sha256 (files under /w); dirs in mdirs
mdirs = set(["/w"])


def P(rel):
    return mnt + rel


def write_file(rel, b, sync=False):
    with open(P(rel), "wb") as f:
        f.write(b)
        if sync:
            f.flush(); os.fsync(f.fileno())


def big_write(rel, mb):
    h = hashlib.sha256()
    block = rnd.randbytes(1 << 20)
    with open(P(rel), "wb") as f:
        for i in range(mb):
            chunk = block[:-8] + i.to_bytes(8, "big")
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def op_small_new(phase):
    d = rnd.choice(sorted(mdirs))
    rel = f"{d}/s{phase}-{rnd.randrange(10**9)}"
    b = rnd.randbytes(rnd.randint(1, 16000))
    err, _ = timed("create", lambda: write_file(rel, b))
    if not err:
        model[rel] = hashlib.sha256(b).hexdigest()


def op_overwrite():
    files = [f for f in model if "/big" not in f]
    if not files:
        return
    rel = rnd.choice(sorted(files))
    b = rnd.randbytes(rnd.randint(1, 16000))
    err, _ = timed("overwrite", lambda: write_file(rel, b))
    if not err:
        model[rel] = hashlib.sha256(b).hexdigest()
    return err


def op_rename():
    files = [f for f in model if "/big" not in f]
    if not files:
        return
    a = rnd.choice(sorted(files))
    d = rnd.choice(sorted(mdirs))
    b = f"{d}/r{rnd.randrange(10**9)}"
    err, _ = timed("rename", lambda: os.rename(P(a), P(b)))
    if not err:
        model[b] = model.pop(a)


def op_remove():
    files = [f for f in model if "/big" not in f]
    if not files:
        return
    a = rnd.choice(sorted(files))
    err, _ = timed("unlink", lambda: os.unlink(P(a)))
    if not err:
        del model[a]


def op_read_model():
    if not model:
        return
    a = rnd.choice(sorted(f for f in model if "/big" not in f) or sorted(model))
    err, b = timed("read-own", lambda: open(P(a), "rb").read())
    if not err and hashlib.sha256(b).hexdigest() != model[a]:
        say("MISMATCH read-own", a)
        report.setdefault("mismatch", []).append(a)


def op_read_legacy():
    if not legacy:
        return
    a = rnd.choice(sorted(legacy))
    err, b = timed("read-legacy", lambda: open(P(a), "rb").read())
    if not err and hashlib.sha256(b).hexdigest() != legacy[a]:
        say("MISMATCH legacy", a)
        report.setdefault("mismatch", []).append(a)
    return err, a


def op_mkdir():
    d = f"{rnd.choice(sorted(mdirs))}/d{rnd.randrange(10**6)}"
    if d.count("/") > 4:
        return
    err, _ = timed("mkdir", lambda: os.mkdir(P(d)))
    if not err:
        mdirs.add(d)


def op_meta():
    timed("ls-R", lambda: subprocess.run(["ls", "-R", mnt], check=True, capture_output=True))
    timed("df", lambda: subprocess.run(["df", mnt], check=True, capture_output=True))
    timed("statfs", lambda: os.statvfs(mnt))
    if model:
        a = rnd.choice(sorted(model))
        timed("stat", lambda: os.stat(P(a)))
    timed("listdir-w", lambda: os.listdir(P("/w")))


def round_(phase):
    for _ in range(args.small_per_round):
        op_small_new(phase)
    for _ in range(args.small_per_round // 4):
        op_overwrite()
    for _ in range(args.small_per_round // 8):
        op_rename()
    for _ in range(args.small_per_round // 8):
        op_remove()
    for _ in range(10):
        op_read_model()
    legacy_errs = {}
    for _ in range(10):
        r = op_read_legacy()
        if r and r[0]:
            legacy_errs[r[1]] = r[0]
    if rnd.random() < 0.3:
        op_mkdir()
    op_meta()
    return legacy_errs


samples = []


def sample(tag):
    st, dt = status()
    r, hwm = rss()
    up = st.get("metrics", {}).get("uploads", {}) if isinstance(st, dict) else {}
    s = {"t": round(time.time() - T0, 1), "tag": tag, "rss": r, "hwm": hwm, "spool_mb": du(spool),
         "journal": journal_size(), "pending": up.get("pending"), "failedAttempts": up.get("failedAttempts"),
         "uploaded": up.get("uploaded"), "status_s": round(dt, 2),
         "reachable": st.get("riak", {}).get("reachable") if isinstance(st, dict) else None}
    if "error" in st:
        s["status_error"] = st["error"]
    samples.append(s)
    say("sample", json.dumps(s))
    return s


def wait_pending_zero(limit_s):
    t = time.time()
    while time.time() - t < limit_s:
        st, _ = status()
        up = st.get("metrics", {}).get("uploads", {})
        if up.get("pending") == 0 and st.get("metrics", {}).get("copyOnRead", {}).get("queued", 0) == 0:
            return time.time() - t
        time.sleep(0.5)
    return None


def log_lines():
    out = []
    for line in open(logf, errors="replace"):
        try:
            out.append(json.loads(line))
        except Exception:
            out.append({"msg": line.strip()})
    return out


def cleanup():
    """Whatever happened: nothing of this run stays mounted or running (by pid)."""
    if mountp is not None and mountp.poll() is None:
        subprocess.run([BIN, "umount", "--run-dir", run, "--drain-timeout", "1000", mnt], capture_output=True)
        try:
            mountp.wait(timeout=30)
        except subprocess.TimeoutExpired:
            mountp.kill()
            mountp.wait()
    if os.path.ismount(mnt):
        subprocess.run(["umount", "-l", mnt])
    if riak is not None and riak.poll() is None:
        riak.send_signal(signal.SIGCONT)
        riak.terminate()
        riak.wait()


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

# ---------- run ----------
start_mount()
say("mounted", args.preset, "pid", mountp.pid)
os.mkdir(P("/w"))
for i in range(4):
    os.mkdir(P(f"/w/d{i}"))
    mdirs.add(f"/w/d{i}")
# Phase A: warm up with Riak up; read every legacy file (copy-on-read, drain deletes local copies).
for a in sorted(legacy):
    open(P(a), "rb").read()
round_("a")
say("writing big files")
model["/w/big0"] = big_write("/w/big0", args.large_mb)
model["/w/big1"] = big_write("/w/big1", args.large_mb // 4)
t = wait_pending_zero(600)
say("settled before outage in", t)
sample("before")
local_legacy_left = sum(1 for a in legacy if os.path.exists(src + a))
report["legacy_local_left_before_outage"] = local_legacy_left

# Phase B: outage
outage_start = time.time()
if args.outage == "stop":
    riak.send_signal(signal.SIGSTOP)
else:
    riak.kill(); riak.wait()
say("OUTAGE begins", args.outage)
last_big = time.time()
rounds = 0
legacy_errors = {}
next_sample = time.time()
while time.time() - outage_start < args.outage_s:
    e = round_(f"b{rounds}")
    for k, v in e.items():
        legacy_errors[v] = legacy_errors.get(v, 0) + 1
    rounds += 1
    if time.time() - last_big > args.large_every:
        say("rewriting bigout")
        err, h = timed("big-rewrite", lambda: big_write("/w/bigout", args.large_mb))
        if not err:
            model["/w/bigout"] = h
        else:
            say("big rewrite failed", err)
        last_big = time.time()
    if time.time() >= next_sample:
        sample("outage")
        next_sample = time.time() + 10
report["outage_rounds"] = rounds
report["legacy_read_errors_during_outage"] = legacy_errors
report["ops_outage"] = {k: dict(v) for k, v in ops.items()}
s_end = sample("outage-end")

def bring_riak_back():
    if args.outage == "stop":
        riak.send_signal(signal.SIGCONT)
    else:
        start_riak()


def riak_back_and_remount():
    """Ends the outage after the mount went away, mounts again and times the backlog."""
    bring_riak_back()
    say("RIAK BACK; remounting")
    start_mount()
    report["recovered_s"] = wait_pending_zero(900)


if args.end == "resume":
    back = time.time()
    bring_riak_back()
    say("RIAK BACK")
    # When is the return noticed (log) and the backlog uploaded?
    noticed = None
    t_zero = None
    while time.time() - back < 900:
        if noticed is None and any("reachable again" in str(l.get("message", l.get("msg", ""))) for l in log_lines()):
            noticed = time.time() - back
        st, _ = status()
        up = st.get("metrics", {}).get("uploads", {})
        if up.get("pending") == 0:
            t_zero = time.time() - back
            break
        time.sleep(0.5)
        if int(time.time() - back) % 10 == 0:
            sample("recovery")
    report["noticed_s"] = noticed
    report["recovered_s"] = t_zero
    sample("recovered")
elif args.end == "umount":
    t = time.time()
    r = subprocess.run([BIN, "umount", "--run-dir", run, "--drain-timeout", "5000", mnt], capture_output=True, text=True)
    report["umount"] = {"code": r.returncode, "out": r.stdout.strip(), "err": r.stderr.strip(), "s": round(time.time() - t, 1)}
    say("umount during outage", report["umount"])
    mountp.wait(timeout=60)
    report["journal_after_umount"] = journal_size()
    riak_back_and_remount()
elif args.end == "sigkill":
    mountp.kill(); mountp.wait()
    say("mount SIGKILLed during outage")
    for _ in range(500):
        if not os.path.ismount(mnt):
            break
        time.sleep(0.02)
    riak_back_and_remount()

# ---------- verify ----------
say("verifying")
bad = []
for rel, h in sorted(model.items()):
    try:
        b = open(P(rel), "rb").read()
        if hashlib.sha256(b).hexdigest() != h:
            bad.append(("mount-differs", rel))
    except OSError as e:
        bad.append(("mount-" + errno.errorcode.get(e.errno, "?"), rel))
tree = json.loads(subprocess.run([DENO, "run", "-A", "--config", os.path.join(ROOT, "deno.json"), os.path.join(ROOT, "bench/overlay/riak_tree.ts"), node, bucket],
                                 capture_output=True, text=True, check=True).stdout)
for rel, h in sorted(model.items()):
    e = tree.get(rel)
    if e is None:
        bad.append(("riak-missing", rel))
    elif e.get("sha256") != h:
        bad.append(("riak-differs", rel))
for rel, e in sorted(tree.items()):
    if rel.startswith("/w/") and e["type"] == "file" and rel not in model:
        bad.append(("riak-resurrected", rel))
    if rel.startswith("/w") and e["type"] == "directory" and rel not in mdirs:
        bad.append(("riak-extra-dir", rel))
for d in mdirs:
    if d not in tree:
        bad.append(("riak-missing-dir", d))
for rel, h in legacy.items():
    e = tree.get(rel)
    if args.preset in ("drain", "migrate", "shadow") and (e is None or e.get("sha256") != h):
        bad.append(("legacy-not-in-riak", rel))
report["bad"] = bad[:50]
report["bad_count"] = len(bad)
report["model_files"] = len(model)
report["dirs"] = len(mdirs)

# ---------- the log ----------
lines = log_lines()
counts = {}
for l in lines:
    k = f"{l.get('level','?')}: {str(l.get('message', l.get('msg','')))[:90]}"
    counts[k] = counts.get(k, 0) + 1
report["log_counts"] = counts
report["samples"] = samples
report["ops_total"] = ops

# ---------- stop ----------
t = time.time()
r = subprocess.run([BIN, "umount", "--run-dir", run, mnt], capture_output=True, text=True)
report["final_umount"] = {"code": r.returncode, "out": r.stdout.strip(), "s": round(time.time() - t, 1)}
try:
    mountp.wait(timeout=60)
except Exception:
    mountp.kill()
riak.send_signal(signal.SIGCONT)
riak.terminate(); riak.wait()
json.dump(report, open(os.path.join(base, "report.json"), "w"), indent=1)
say("REPORT", json.dumps({k: v for k, v in report.items() if k not in ("samples", "ops_total")}, indent=1))
if not args.keep:
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
