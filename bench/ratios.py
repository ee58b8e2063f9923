#!/usr/bin/env python3
"""Turns one bench/run.sh output directory into the ratios the issues ask for.

  ratios.py DIR                 print the ratio table (medians over rounds), then the
                                paired ratios: meshgate against its peer within each
                                round (minutes apart, so the machine's drift between
                                rounds cancels), their median, and in how many rounds
                                the goal held
  ratios.py --check-served DIR  exit 1 unless meshgate served requests with no errors
                                (the CI smoke check: it works, not how fast)
"""
import csv
import os
import statistics
import sys


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def med(rs, target, key, conns=None):
    v = [float(r[key]) for r in rs if r["target"] == target and (conns is None or r.get("conns") == conns)]
    return statistics.median(v) if v else None


def h1_table(rs):
    out = []
    for conns in sorted({r["conns"] for r in rs}, key=int):
        m = {t: {k: med(rs, t, k, conns) for k in ("rps", "p99_ms", "cpu0", "srv_cpu_us_per_req")}
             for t in ("nginx", "haproxy", "meshgate")}
        # cpu0us/r: whole CPU0 busy time per request, as the harness summary computes it.
        def cpu0us(t):
            sel = [r for r in rs if r["target"] == t and r["conns"] == conns]
            vals = [float(r["cpu0"]) / 100.0 * 1e6 / float(r["rps"]) for r in sel if float(r["rps"]) > 0]
            return statistics.median(vals) if vals else None
        c = {t: cpu0us(t) for t in ("nginx", "haproxy", "meshgate")}
        if None in c.values() or m["meshgate"]["rps"] is None:
            continue
        best = min(c["nginx"], c["haproxy"])
        out.append(
            f"h1 c{conns}: cpu0us/r meshgate {c['meshgate']:.2f} nginx {c['nginx']:.2f} haproxy {c['haproxy']:.2f}"
            f" -> ratio to better {c['meshgate'] / best:.2f} (goal <= 0.80)\n"
            f"h1 c{conns}: req/s meshgate {m['meshgate']['rps']:.0f} nginx {m['nginx']['rps']:.0f}"
            f" -> ratio {m['meshgate']['rps'] / m['nginx']['rps']:.2f} (goal >= 1.00)\n"
            f"h1 c{conns}: p99 ms meshgate {m['meshgate']['p99_ms']:.2f} nginx {m['nginx']['p99_ms']:.2f}"
            f" -> ratio {m['meshgate']['p99_ms'] / max(m['nginx']['p99_ms'], 1e-9):.2f} (goal <= 1.00)")
    return out


def h2_table(rs):
    us = {t: med(rs, t, "srv_cpu_us_per_req") for t in ("nginx", "haproxy", "extra")}
    rps = {t: med(rs, t, "rps") for t in ("nginx", "haproxy", "extra")}
    if None in us.values():
        return []
    return [f"h2c: srv us/req meshgate {us['extra']:.2f} nginx {us['nginx']:.2f} haproxy {us['haproxy']:.2f}"
            f" -> ratio to haproxy {us['extra'] / us['haproxy']:.2f} (goal <= 0.90); "
            f"req/s meshgate {rps['extra']:.0f} haproxy {rps['haproxy']:.0f}"]


def paired(rs, peer, mine, key, goal, cmp, conns=None, label=""):
    """meshgate/peer of `key` within each round; `cmp(ratio, goal)` says if it held."""
    by = {}
    for r in rs:
        if conns is None or r.get("conns") == conns:
            by.setdefault(r["round"], {})[r["target"]] = float(r[key])
    ratios = [v[mine] / v[peer] for v in by.values() if v.get(mine) and v.get(peer)]
    if not ratios:
        return []
    held = sum(1 for x in ratios if cmp(x, goal))
    return [f"{label} {key} {mine}/{peer} per round: "
            + " ".join(f"{x:.2f}" for x in ratios)
            + f" -> median {statistics.median(ratios):.2f}, goal held in {held}/{len(ratios)} rounds"]


def paired_tables(h1, h2):
    le = lambda x, g: x <= g  # noqa: E731
    ge = lambda x, g: x >= g  # noqa: E731
    out = []
    for conns in sorted({r["conns"] for r in h1}, key=int):
        if not any(r["target"] == "meshgate" and r["conns"] == conns for r in h1):
            continue
        lab = f"h1 c{conns}:"
        out += paired(h1, "nginx", "meshgate", "rps", 1.0, ge, conns, lab)
        out += paired(h1, "nginx", "meshgate", "p99_ms", 1.0, le, conns, lab)
        for peer in ("nginx", "haproxy"):
            out += paired(h1, peer, "meshgate", "srv_cpu_us_per_req", 0.8, le, conns, lab)
    out += paired(h2, "haproxy", "extra", "srv_cpu_us_per_req", 0.9, le, None, "h2c:")
    return out


def main():
    check = sys.argv[1] == "--check-served"
    d = sys.argv[-1]
    h1 = rows(os.path.join(d, "h1", "results.csv"))
    h2 = rows(os.path.join(d, "h2", "results.csv"))
    if check:
        ok = True
        for r in h1:
            if r["target"] == "meshgate" and (float(r["rps"]) <= 0 or int(float(r["errors"])) != 0):
                print("meshgate h1 run failed:", r); ok = False
        for r in h2:
            if r["target"] == "extra" and (float(r["rps"]) <= 0 or int(float(r["failed"])) != 0):
                print("meshgate h2 run failed:", r); ok = False
        if not any(r["target"] == "meshgate" for r in h1):
            print("no meshgate h1 rows"); ok = False
        sys.exit(0 if ok else 1)
    for line in h1_table(h1) + h2_table(h2) + paired_tables(h1, h2):
        print(line)


if __name__ == "__main__":
    main()
