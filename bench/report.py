"""Turns bench/run.sh's per-run TSV into the markdown results table (stdout)."""
import csv
import statistics
import sys

results, machine = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(results), delimiter="\t"))
groups = {}
for row in rows:
    groups.setdefault((row["case"], row["tool"]), []).append(row)

TOOLS = {"ours": "Croc for .NET (native AOT)", "ours-jit": "Croc for .NET (JIT runtime)", "ours-ws": "Croc for .NET, WebSocket legs", "ours-wss": "Croc for .NET, wss legs through nginx TLS", "wormhole": "magic-wormhole (transit relay)", "bare": "bare socat relay hop"}
MIB = 1048576


def med(group, key):
    return statistics.median(float(r[key]) for r in group)


def peak(group, key):
    return max(float(r[key]) for r in group)


def walls(case):
    return {tool: med(g, "wall") for (c, tool), g in groups.items() if c == case}


print("# Transfer benchmark results\n")
print("Produced by `bash bench/run.sh` (see docs/benchmarks.md). Machine:\n")
print("```")
print(open(machine).read().rstrip())
print("```\n")
print("Wall = from starting sender and recipient together (handshake and process start-up included) until both "
      "have exited successfully; the result is then checked byte for byte (cmp / diff -r). CPU = user+sys seconds "
      "(median over runs); RSS = peak resident set (max over runs). Relay = our relay process, wormhole's transit "
      "relay (its mailbox server is not counted), or the middle socat. The bare folder case is `tar c | socat hop | tar x`. Ratio = our (native AOT) median wall / that tool's. “JIT runtime” is the same program as a plain Release build: the library as it runs inside a .NET app.\n")
print("| case | tool | median wall s | min–max s | throughput | CPU s send / recv / relay | peak RSS MiB send / recv / relay | ours ÷ this |")
print("|---|---|---:|---:|---:|---|---|---:|")
order = {"ours": 0, "ours-jit": 1, "ours-ws": 2, "ours-wss": 3, "wormhole": 4, "bare": 5}
cases = []
for row in rows:
    if row["case"] not in cases:
        cases.append(row["case"])
for case in cases:
    w = walls(case)
    for tool in sorted({t for (c, t) in groups if c == case}, key=lambda t: order.get(t, 9)):
        g = groups[(case, tool)]
        wall = med(g, "wall")
        lo = min(float(r["wall"]) for r in g)
        hi = max(float(r["wall"]) for r in g)
        files = int(g[0]["files"])
        size = int(g[0]["bytes"])
        if files > 1:
            rate = f"{files / wall:,.0f} files/s"
        else:
            rate = f"{size / MIB / wall:,.0f} MiB/s"
        cpu = " / ".join(f"{med(g, k):.2f}" for k in ("s_cpu", "r_cpu", "relay_cpu"))
        rss = " / ".join(f"{peak(g, k):.0f}" for k in ("s_rss", "r_rss", "relay_rss"))
        ratio = "—" if tool == "ours" or "ours" not in w else f"{w['ours'] / wall:.2f} (ours {wall / w['ours']:.1f}× faster)" if w['ours'] < wall else f"{w['ours'] / wall:.2f} (ours {w['ours'] / wall:.1f}× slower)"
        print(f"| {case} | {TOOLS.get(tool, tool)} | {wall:.2f} | {lo:.2f}–{hi:.2f} | {rate} | {cpu} | {rss} | {ratio} |")

print("\n<details><summary>Every run</summary>\n")
print("| case | tool | run | wall s | CPU s send / recv / relay | RSS MiB send / recv / relay | load avg |")
print("|---|---|---:|---:|---|---|---:|")
for r in rows:
    print(f"| {r['case']} | {r['tool']} | {r['run']} | {float(r['wall']):.2f} | {float(r['s_cpu']):.2f} / {float(r['r_cpu']):.2f} / {float(r['relay_cpu']):.2f} "
          f"| {float(r['s_rss']):.0f} / {float(r['r_rss']):.0f} / {float(r['relay_rss']):.0f} | {r.get('load', '')} |")
print("\n</details>")
