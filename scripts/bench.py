"""Benchmark plan / audit / import / validate against moto. Prints figures; asserts
nothing. Usage: bench.py BIN [--latency MS] N [N...]
             bench.py BIN --accounts K N

With --accounts K N, the estate is N buckets in one account, then N buckets in
each of K accounts (the caller's and K-1 whose role the tool assumes, as moto
plays them), and `plan` and `audit` run once over each: wall time per bucket
and peak RSS, to show the run's memory stays flat in the estate's size.

With --latency MS, `plan` also runs through a loopback proxy that holds each
request MS milliseconds before forwarding it (AWS's round trip, which moto
on loopback does not have), and the run is compared with its floor: the
larger of calls x MS / concurrency and moto's own CPU for the calls.

For each N: seed N buckets with a mixed posture, write a policy naming them,
then run `plan`, `audit` and `import --all-buckets` (3 runs each, median)
and report wall time, the tool's CPU (user+sys), its peak RSS, API calls
made (from moto's request log) and moto's own CPU during the run (from
/proc).
"""

import os
import socket
import socketserver
import threading
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class LatencyProxy(socketserver.ThreadingTCPServer):
    """One request per connection (moto answers Connection: close): read it,
    wait the latency, forward it to moto, relay the answer."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream, latency_s):
        self.upstream, self.latency_s = upstream, latency_s
        super().__init__(("127.0.0.1", 0), LatencyHandler)


class LatencyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            body += chunk
        time.sleep(self.server.latency_s)
        up = socket.create_connection(("127.0.0.1", self.server.upstream))
        up.sendall(head + b"\r\n\r\n" + body)
        while True:
            chunk = up.recv(65536)
            if not chunk:
                break
            self.request.sendall(chunk)
        up.close()


def run(cmd, env, moto_pid, log_path):
    log_before = os.path.getsize(log_path)
    moto_before = proc_cpu(moto_pid)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Peak RSS from the child's own VmHWM: wait4's ru_maxrss would count the
    # moment between fork and exec, when the child is a copy of this Python.
    hwm_kb = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm_kb = max(hwm_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    moto_cpu = proc_cpu(moto_pid) - moto_before
    with open(log_path, "rb") as f:
        f.seek(log_before)
        calls = sum(1 for line in f if b' HTTP/1.1' in line)  # 4xx lines carry ANSI colour
    p.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        raise SystemExit(f"{cmd} failed with exit {code}: {p.stderr.read().decode()}")
    return {
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": hwm_kb / 1024,
        "calls": calls,
        "moto_cpu": moto_cpu,
    }


CALLER = "123456789012"


def account_id(k):
    return CALLER if k == 0 else f"{200000000000 + k:012d}"


def seed_accounts(url, k_accounts, n):
    """N buckets in each of K accounts, a third compliant, a third drifted,
    a third bare, created with that account's assumed-role credentials."""
    from concurrent.futures import ThreadPoolExecutor
    base = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")

    def clients(k):
        if k == 0:
            return boto3.client("s3", **base)
        c = boto3.client("sts", **base).assume_role(
            RoleArn=f"arn:aws:iam::{account_id(k)}:role/suoops-policy", RoleSessionName="seed")["Credentials"]
        return boto3.client("s3", **dict(base, aws_access_key_id=c["AccessKeyId"],
                                         aws_secret_access_key=c["SecretAccessKey"],
                                         aws_session_token=c["SessionToken"]))

    def seed(k):
        s3 = clients(k)
        for i in range(n):
            name = f"acct{k:02d}-{i:05d}"
            s3.create_bucket(Bucket=name)
            if i % 3 == 0:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
            elif i % 3 == 1:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(seed, range(k_accounts)))


def account_policy(path, k_accounts, n):
    with open(path, "w") as f:
        f.write("version: 1\naws:\n  region: us-east-1\naccounts:\n")
        for k in range(k_accounts):
            role = "" if k == 0 else f", role: \"arn:aws:iam::{account_id(k)}:role/suoops-policy\""
            f.write(f"  a{k:02d}: {{id: \"{account_id(k)}\"{role}}}\n")
        f.write("s3:\n  buckets:\n")
        for k in range(k_accounts):
            for i in range(n):
                f.write(f"    acct{k:02d}-{i:05d}:\n      account: a{k:02d}\n      versioning: enabled\n"
                        f"      encryption: {{algorithm: AES256}}\n")


def accounts_main(binary, k_accounts, n, url, env, moto, log_path, work):
    print(f"{'cmd':<6} {'accounts':>8} {'buckets':>8} {'wall s':>8} {'ms/bucket':>9} {'tool cpu s':>10} "
          f"{'calls':>7} {'moto cpu s':>10} {'rss MB':>7}")
    seed_accounts(url, k_accounts, n)
    for k in (1, k_accounts):
        policy = os.path.join(work, f"accounts-{k}.yaml")
        account_policy(policy, k, n)
        for cmd in ("plan", "audit"):
            r = run([binary, cmd, "-f", policy], env, moto.pid, log_path)
            total = k * n
            print(f"{cmd:<6} {k:>8} {total:>8} {r['wall']:>8.2f} {1000 * r['wall'] / total:>9.3f} "
                  f"{r['cpu']:>10.2f} {r['calls']:>7} {r['moto_cpu']:>10.2f} {r['rss_mb']:>7.1f}")


def main():
    binary = sys.argv[1]
    args = sys.argv[2:]
    k_accounts = 0
    if args[:1] == ["--accounts"]:
        k_accounts, args = int(args[1]), args[2:]
    latency_ms = 0
    if args[:1] == ["--latency"]:
        latency_ms, args = int(args[1]), args[2:]
    sizes = [int(n) for n in args] or [200]
    work = tempfile.mkdtemp(prefix="suoops-bench-")
    log_path = os.path.join(work, "moto.log")
    port = free_port()
    log = open(log_path, "wb")
    moto = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts/moto_launcher.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=log,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")
        env.pop("AWS_PROFILE", None)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        print(f"moto pid {moto.pid} on {url}; binary {binary}")
        if k_accounts:
            accounts_main(binary, k_accounts, sizes[0], url, env, moto, log_path, work)
            return
        print(f"{'cmd':<8} {'N':>5} {'wall s':>8} {'moto cpu s':>10} {'wall/moto':>9} {'tool cpu s':>10} "
              f"{'ms/call':>8} {'calls':>6} {'calls/bkt':>9} {'rss MB':>7}")
        seeded = 0
        for n in sizes:
            for i in range(seeded, n):
                name = f"bench-{i:05d}"
                s3.create_bucket(Bucket=name)
                # Mixed posture: a third compliant, a third drifted, a third bare.
                if i % 3 == 0:
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
                    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
                        "BlockPublicAcls": True, "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
                elif i % 3 == 1:
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
            seeded = max(seeded, n)
            policy = os.path.join(work, f"policy-{n}.yaml")
            with open(policy, "w") as f:
                f.write("version: 1\naws:\n  region: us-east-1\ns3:\n  buckets:\n")
                for i in range(n):
                    f.write(f"    bench-{i:05d}:\n      versioning: enabled\n"
                            f"      encryption: {{algorithm: AES256}}\n      public_access_block: all\n")
            imported = os.path.join(work, f"imported-{n}.yaml")
            commands = {
                "plan": [binary, "plan", "-f", policy],
                "audit": [binary, "audit", "-f", policy],
                # Every setting of every bucket: 7 reads each, by design.
                "import": [binary, "import", "--all-buckets", "-o", imported],
            }
            if latency_ms:
                proxy = LatencyProxy(port, latency_ms / 1000)
                threading.Thread(target=proxy.serve_forever, daemon=True).start()
                lenv = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
                concurrency = 16
                runs = [run([binary, "plan", "-f", policy], lenv, moto.pid, log_path) for _ in range(3)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                floor = max(med["calls"] * latency_ms / 1000 / concurrency, med["moto_cpu"])
                print(f"plan through {latency_ms} ms latency, N={n}: wall {med['wall']:.3f} s, "
                      f"{int(med['calls'])} calls ({med['calls'] / n:.2f}/bucket), latency floor "
                      f"{med['calls'] * latency_ms / 1000 / concurrency:.3f} s, moto cpu {med['moto_cpu']:.3f} s, "
                      f"wall/floor {med['wall'] / floor:.2f}, tool cpu {med['cpu']:.3f} s, rss {med['rss_mb']:.1f} MB")
                proxy.shutdown()
                continue
            for cmd, argv in commands.items():
                runs = [run(argv, env, moto.pid, log_path) for _ in range(3)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                calls = med["calls"] or 1
                print(f"{cmd:<8} {n:>5} {med['wall']:>8.3f} {med['moto_cpu']:>10.3f} "
                      f"{med['wall'] / max(med['moto_cpu'], 1e-9):>9.2f} {med['cpu']:>10.3f} "
                      f"{1000 * med['cpu'] / calls:>8.3f} {int(med['calls']):>6} {med['calls'] / n:>9.2f} "
                      f"{med['rss_mb']:>7.1f}")
        shipped = os.path.join(ROOT, "policies/suoops.yaml")
        venv = dict(os.environ, REDIS_CACHE_URL="redis://127.0.0.1:1/0", REDIS_QUEUE_URL="redis://127.0.0.1:1/0",
                    DATABASE_URL="postgres://postgres@127.0.0.1:1/postgres", WAL_ARCHIVE_COMMAND="cp %p /a/%f")
        walls = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run([binary, "validate", "-f", shipped], check=True, stdout=subprocess.DEVNULL, env=venv)
            walls.append(time.perf_counter() - t0)
        print(f"validate policies/suoops.yaml: median {1000 * statistics.median(walls):.1f} ms over 20 runs")
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
