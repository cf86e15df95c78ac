#!/usr/bin/env python3
"""bench_datapath.py: one size of `scripts/bench datapath` (driven by scripts/bench-datapath).

    bench_datapath.py BIN_DIR CONNECT_BIN LAB WORK TAG N P CONNECTS ROUNDS WARMUP CAPS OUT_JSON

On one lab (scripts/lab, tag TAG: a node namespace and two real pods, client and server) and
one generated state (palisade-bench write-state N P, plus the two real pods and two policies
that admit client -> server TCP 7000), it measures TCP connect latency from the client pod to
the server pod under each ruleset in the node namespace:

  empty      no ruleset at all in the node namespace (`nft list ruleset` prints nothing);
  full       Palisade's ruleset for the state, loaded by agentd running in the node namespace
             on the state directory, as users run it (agentd stays up while connects run;
             default flow logs: its NFLOG and conntrack event readers run);
  full-noflows  the same with `flowLogs: off`: no log rules, no NFLOG or conntrack event readers
             (no conntrack events for the kernel to send), which separates what the flow monitor
             costs each connection from what the ruleset costs;
  ct         conntrack only: `ct state established,related accept`, `ct state invalid drop`,
             the real pods' rule, drop
             (the linear ruleset with no expanded rules: what conntrack alone costs);
  linear-K   the iptables-style baseline (palisade-bench render-linear): one chain in the
             forward hook, K expanded rules before the real pods' rule, then drop.

Each of ROUNDS rounds runs every case once (in a rotated order), WARMUP unrecorded connects
then CONNECTS/ROUNDS recorded ones, so that drift of the machine spreads over all cases.
Every connect is a new connection; conntrack of the node namespace is flushed before each case
(before its ruleset is loaded, not between the probes and the connects: a flush there turns the
probes' late teardown packets into new ones).
Everything it makes is removed in `finally` (and by scripts/bench-datapath's trap after a crash).
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

(bin_dir, connect_bin, lab, work, tag, n, p, connects, rounds, warmup, caps, out_json) = sys.argv[1:13]
n, p, connects, rounds, warmup = int(n), int(p), int(connects), int(rounds), int(warmup)
caps = [int(c) for c in caps.split(",")]
bench, agentd, agentctl = (os.path.join(bin_dir, b) for b in ("palisade-bench", "agentd", "agentctl"))

ALLOWED, DENIED = 7000, 7001
CLIENT = {"name": "dpcli", "v4": "198.19.254.1", "v6": "2001:db8:fe::1", "ifname": "plxcli",
          "pod": "dp-client", "role": "dp-client", "tier": "frontend"}
SERVER = {"name": "dpsrv", "v4": "198.19.254.2", "v6": "2001:db8:fe::2", "ifname": "plxsrv",
          "pod": "dp-server", "role": "dp-server", "tier": "backend"}
NODE, CLIENT_NS, SERVER_NS = "pal-%s-node" % tag, "pal-%s-dpcli" % tag, "pal-%s-dpsrv" % tag
dir_ = os.path.join(work, "n%d-p%d" % (n, p))
state = dir_ + "/state"
sock = dir_ + "/agentd.sock"
agent = None
server = None
result = {"endpoints": n, "policies": p, "connects_per_case": connects, "rounds": rounds, "warmup_per_round": warmup}


def log(msg):
    print("bench:   " + msg, file=sys.stderr, flush=True)


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), r.returncode, (r.stdout + r.stderr).strip()[-2000:]))
    return r


def in_node(*cmd, check=True):
    return run("ip", "netns", "exec", NODE, *cmd, check=check)


def rank(values, pct):
    values = sorted(values)
    return values[max(0, math.ceil(pct / 100 * len(values)) - 1)] if values else float("nan")


def summary(us):
    return {"median_us": round(rank(us, 50), 2), "p90_us": round(rank(us, 90), 2), "p99_us": round(rank(us, 99), 2),
            "mean_us": round(sum(us) / len(us), 2), "min_us": round(min(us), 2), "max_us": round(max(us), 2), "n": len(us)}


def ruleset_text():
    return in_node("nft", "list", "ruleset").stdout


def flush_node():
    """No ruleset and no conntrack entries left in the node namespace (ours, by name)."""
    in_node("nft", "flush", "ruleset")
    in_node("conntrack", "-F", check=False)   # exits 1 when conntrack never ran there: fine
    if ruleset_text().strip():
        raise SystemExit("the node namespace still has a ruleset after flush")


def probe(port, timeout_ms=300):
    r = run("ip", "netns", "exec", CLIENT_NS, connect_bin, "probe", SERVER["v4"], str(port), str(timeout_ms), check=False)
    return r.returncode == 0, r.stdout.strip()


def measure(case, count):
    """WARMUP + count connects from the client pod; returns (connect_us, cycle_us)."""
    out = "%s/%s-%d.samples" % (dir_, case, time.monotonic_ns())
    r = run("ip", "netns", "exec", CLIENT_NS, "taskset", "-c", str(os.cpu_count() - 1), connect_bin, "connect",
            SERVER["v4"], str(ALLOWED), str(count), str(warmup), out, "3000", check=False)
    if r.returncode != 0:
        raise SystemExit("%s: connects failed: %s" % (case, (r.stdout + r.stderr).strip()))
    pairs = [line.split() for line in open(out).read().splitlines()]
    os.unlink(out)
    return [int(a) / 1000 for a, _ in pairs], [int(b) / 1000 for _, b in pairs]


def ctl(*args):
    return subprocess.run([agentctl, "--socket", sock] + list(args), capture_output=True, text=True)


def start_agent(config):
    global agent
    started = time.perf_counter()
    agent = subprocess.Popen(["ip", "netns", "exec", NODE, agentd, "--state-dir", state, "--socket", sock,
                              "--data-dir", dir_ + "/data", "--config", dir_ + "/" + config],
                             stdout=open(dir_ + "/agentd.log", "a"), stderr=subprocess.STDOUT)
    while True:
        if agent.poll() is not None:
            raise SystemExit("agentd exited at start-up: " + open(dir_ + "/agentd.log").read()[-2000:])
        if time.perf_counter() - started > 600:
            raise SystemExit("agentd did not load within 600 s")
        r = ctl("status", "-o", "json")
        if r.returncode in (0, 1) and r.stdout.strip():
            try:
                if json.loads(r.stdout).get("generation", 0) >= 1:
                    break
            except ValueError:
                pass
        time.sleep(0.02)
    r = ctl("sync")
    if r.returncode != 0:
        raise SystemExit("agentctl sync failed: " + r.stdout + r.stderr)
    status = json.loads(ctl("status", "-o", "json").stdout)
    if status.get("endpoints") != n + 2:
        raise SystemExit("the agent sees %s endpoints, not %d (log %s/agentd.log)" % (status.get("endpoints"), n + 2, dir_))
    return time.perf_counter() - started, status


def agent_cpu_ms():
    """agentd's user + system CPU time so far (ms), 0 when it is not running."""
    try:
        fields = open("/proc/%d/stat" % agent.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return 0.0


def stop_agent():
    global agent
    if agent and agent.poll() is None:
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    agent = None


def trace_full():
    """One traced connect under the full ruleset: the rules the SYN went through, in order.
    A separate table (palisade-dptrace, removed right after) marks the SYN with nftrace."""
    with open(dir_ + "/trace.nft", "w") as f:
        f.write("table ip palisade-dptrace {\n\tchain pre {\n\t\ttype filter hook prerouting priority -350;\n"
                "\t\tip saddr %s ip daddr %s tcp dport %d tcp flags & (syn | ack) == syn meta nftrace set 1\n\t}\n}\n"
                % (CLIENT["v4"], SERVER["v4"], ALLOWED))
    in_node("nft", "-f", dir_ + "/trace.nft")
    monitor = subprocess.Popen(["ip", "netns", "exec", NODE, "nft", "monitor", "trace"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        ok, _ = probe(ALLOWED, 2000)
        time.sleep(0.5)
    finally:
        monitor.terminate()
        out = monitor.communicate(timeout=10)[0]
        open(dir_ + "/full-trace.txt", "w").write(out)
        in_node("nft", "delete", "table", "ip", "palisade-dptrace")
    steps = []
    for line in out.splitlines():
        m = re.match(r"trace id \S+ inet palisade (\S+) rule (.*?) \(verdict (\w+)(?: (\S+))?\)$", line)
        if m:
            rule = re.sub(r' comment ".*"$', "", m[2])
            steps.append({"chain": m[1], "rule": rule, "verdict": (m[3] + " " + (m[4] or "")).strip()})
    return ok, steps


def write_state():
    log(run(bench, "write-state", state, str(n), str(p)).stdout.strip())

    def pod(spec):
        return """apiVersion: v1
kind: Pod
metadata:
  name: %(pod)s
  namespace: ns0
  uid: uid-%(pod)s
  labels:
    app: "web"
    bench-role: "%(role)s"
    pod-template-hash: "h0"
    tier: "%(tier)s"
    version: "v0"
  annotations:
    palisade.dev/interface: %(ifname)s
spec:
  containers:
  - name: app
    image: registry.example/app:1
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
    - {name: metrics, containerPort: 9090, protocol: TCP}
status:
  phase: Running
  podIP: "%(v4)s"
  podIPs:
  - ip: "%(v4)s"
  - ip: "%(v6)s"
""" % spec
    # The real pods look like the synthetic pods of namespace ns0 (app web: several synthetic
    # policies select both, in both directions), plus a bench-role label. The two policies that
    # admit client -> server sort after every synthetic Kubernetes policy of ns0 ("zz-"), so the
    # SYN is refused by each of those first.
    files = {
        "pods/ns0_dp-client.yaml": pod(CLIENT),
        "pods/ns0_dp-server.yaml": pod(SERVER),
        "policies/ns0_zz-datapath-server.yaml": """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: zz-datapath-server, namespace: ns0}
spec:
  podSelector: {matchLabels: {bench-role: dp-server}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {bench-role: dp-client}}
    ports:
    - {protocol: TCP, port: %d}
""" % ALLOWED,
        "policies/ns0_zz-datapath-client.yaml": """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: zz-datapath-client, namespace: ns0}
spec:
  podSelector: {matchLabels: {bench-role: dp-client}}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector: {matchLabels: {bench-role: dp-server}}
    ports:
    - {protocol: TCP, port: %d}
""" % ALLOWED,
    }
    for name, text in files.items():
        with open(os.path.join(state, name), "w") as f:
            f.write(text)
    os.makedirs(dir_ + "/data", exist_ok=True)
    base = "defaultPolicy: allow\ntableName: palisade\ninterfacePrefix: pl\nresyncSeconds: 0\n"
    with open(dir_ + "/agentd.yaml", "w") as f:
        f.write(base)
    with open(dir_ + "/agentd-noflows.yaml", "w") as f:
        f.write(base + "flowLogs: off\n")


def cleanup():
    global server
    stop_agent()
    if server and server.poll() is None:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
    server = None
    subprocess.run([lab, "down", tag], capture_output=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
try:
    os.makedirs(dir_, exist_ok=True)
    write_state()

    # Linear rulesets (and the conntrack-only one: cap 0), rendered once.
    linear = {}
    for cap in [0] + caps:
        path = "%s/linear-%d.nft" % (dir_, cap)
        line = run(bench, "render-linear", str(n), str(p), path, str(cap), CLIENT["v4"], SERVER["v4"], str(ALLOWED)).stdout.strip()
        m = re.match(r"linear rules (\d+) of (\d+) \(cap (\d+)\)", line)
        linear[cap] = {"file": path, "rules": int(m[1]), "expanded_total": int(m[2]), "cap": cap, "nft_f_s": []}
        if cap:
            log(line)

    # The lab: node namespace and the two real pods; servers on the allowed and the denied port.
    spec = lambda s: "%s=%s,%s,%s" % (s["name"], s["v4"], s["v6"], s["ifname"])
    run(lab, "up", tag, spec(CLIENT), spec(SERVER))
    # A wide ephemeral port range in the client, so no 4-tuple repeats within a run.
    run("ip", "netns", "exec", CLIENT_NS, "sh", "-c", "echo 10000 65000 > /proc/sys/net/ipv4/ip_local_port_range")
    server = subprocess.Popen(["ip", "netns", "exec", SERVER_NS, "taskset", "-c", "0", connect_bin, "serve",
                               str(ALLOWED), str(DENIED)], stdout=subprocess.DEVNULL, stderr=open(dir_ + "/server.log", "w"))
    for _ in range(100):
        if probe(ALLOWED, 200)[0]:
            break
        time.sleep(0.05)
    flush_node()

    cases = ["empty", "full", "full-noflows", "ct"] + ["linear-%d" % c for c in caps]
    agent_cases = {"full": "agentd.yaml", "full-noflows": "agentd-noflows.yaml"}
    samples = {c: [] for c in cases}
    cycles = {c: [] for c in cases}
    per_round = {c: [] for c in cases}
    checks = {c: {"allowed_ok": 0, "denied_blocked": 0, "rounds": 0} for c in cases}
    counters = {}
    extra_new = {}
    agent_loads = []
    agent_cpu = []
    per = [connects // rounds + (1 if r < connects % rounds else 0) for r in range(rounds)]
    for r in range(rounds):
        order = cases[r % len(cases):] + cases[:r % len(cases)]
        for case in order:
            flush_node()
            if case in agent_cases:
                loaded_s, status = start_agent(agent_cases[case])
                if case == "full":
                    agent_loads.append(round(loaded_s, 3))
                time.sleep(1.0)    # agentd settles after its first reconcile
                if "palisade" not in in_node("nft", "list", "tables").stdout:
                    raise SystemExit("agentd runs but table inet palisade is missing")
                if case == "full" and "full_trace" not in result:
                    ok, steps = trace_full()
                    result["full_trace"] = steps
                    result["agent_status"] = {k: status.get(k) for k in ("generation", "endpoints", "policies", "chains", "sets", "rules") if k in status}
                    log("full: the traced SYN went through %d rules in chains %s" % (
                        len(steps), " -> ".join(dict.fromkeys(s["chain"] for s in steps))))
                    if not ok or not steps or steps[-1]["verdict"] != "accept":
                        raise SystemExit("the traced SYN was not accepted by table palisade: %s" % steps)
            elif case != "empty":
                cap = 0 if case == "ct" else int(case.split("-")[1])
                t = time.perf_counter()
                in_node("nft", "-f", linear[cap]["file"])
                linear[cap]["nft_f_s"].append(round(time.perf_counter() - t, 3))
            # Reachability under this ruleset: the allowed port must answer, the other must not
            # (with no ruleset it does, which shows that the rules are what refuses it).
            ok_allowed, _ = probe(ALLOWED, 2000)
            ok_denied, why = probe(DENIED, 300)
            checks[case]["rounds"] += 1
            checks[case]["allowed_ok"] += ok_allowed
            checks[case]["denied_blocked"] += (not ok_denied)
            if not ok_allowed:
                raise SystemExit("%s: the client cannot reach the server on %d" % (case, ALLOWED))
            if ok_denied == (case != "empty"):
                raise SystemExit("%s: port %d %s" % (case, DENIED, "got through a ruleset that must refuse it" if ok_denied else "is unreachable with no ruleset: " + why))
            time.sleep(0.1)    # the probes' teardown packets are through
            cpu0 = agent_cpu_ms()
            c_us, y_us = measure(case, per[r])
            if case == "full":
                agent_cpu.append(round(agent_cpu_ms() - cpu0, 1))
            samples[case] += c_us
            cycles[case] += y_us
            per_round[case].append(round(rank(c_us, 50), 2))
            if case.startswith("linear") or case == "ct":
                listed = in_node("nft", "list", "chain", "ip", "palisade-linear", "forward").stdout
                m = re.search(r'counter packets (\d+) bytes \d+ accept comment "the benchmark\'s real pods"', listed)
                counters.setdefault(case, []).append(int(m[1]) if m else -1)
                # Every recorded and warm-up connect, and the one allowed probe, must have matched the
                # last rule (fewer: the SYN did not walk the list). More: a SYN retransmitted, or
                # another packet conntrack did not see as established; counted and reported.
                if not m or int(m[1]) < warmup + per[r] + 1:
                    raise SystemExit("%s: the real pods' rule counted %s packets, not %d" % (case, m[1] if m else "none", warmup + per[r] + 1))
                extra_new[case] = extra_new.get(case, 0) + int(m[1]) - (warmup + per[r] + 1)
            if case in agent_cases:
                stop_agent()
            log("round %d %-13s median %.1f us p99 %.1f us (n=%d)" % (r + 1, case, rank(c_us, 50), rank(c_us, 99), len(c_us)))
    flush_node()

    result["cases"] = {c: summary(samples[c]) for c in cases}
    result["cycle"] = {c: summary(cycles[c]) for c in cases}
    result["per_round_median_us"] = per_round
    result["checks"] = checks
    result["real_pods_rule_counter_per_round"] = counters
    result["real_pods_rule_extra_packets"] = extra_new
    result["slow_connects_over_200ms"] = {c: sum(1 for v in samples[c] if v > 200000) for c in cases}
    result["agent_start_to_synced_s"] = agent_loads
    result["agent_cpu_ms_during_full_connects"] = agent_cpu
    result["linear"] = {c: {k: v for k, v in linear[c].items() if k != "file"} for c in linear}
    e = result["cases"]["empty"]
    ratios = {}
    for c in cases[1:]:
        x = result["cases"][c]
        ratios[c] = {"median": round(x["median_us"] / e["median_us"], 3), "p99": round(x["p99_us"] / e["p99_us"], 3),
                     "added_median_us": round(x["median_us"] - e["median_us"], 2)}
    result["ratios_to_empty"] = ratios
    full = result["cases"]["full"]
    result["ratio_full_to_ct"] = {"median": round(full["median_us"] / result["cases"]["ct"]["median_us"], 3),
                                  "added_median_us": round(full["median_us"] - result["cases"]["ct"]["median_us"], 2)}
    result["ratio_full_noflows_to_ct"] = {"median": round(result["cases"]["full-noflows"]["median_us"] / result["cases"]["ct"]["median_us"], 3),
                                          "added_median_us": round(result["cases"]["full-noflows"]["median_us"] - result["cases"]["ct"]["median_us"], 2)}
    result["goal_full_within_10pct_of_empty"] = full["median_us"] <= 1.10 * e["median_us"]
    json.dump(result, open(out_json, "w"), indent=1)
finally:
    cleanup()
