#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# report.py - turn the "BENCH ..." lines of the bench guest(s) into
# results.json, the ratio table (stdout) and gnuplot PNG charts.
#
#   report.py --out DIR [--start T --wall S --load L --others N] KVER...
#
# Reads DIR/<kver>/results.log for each kernel.  Medians of the repeats are
# compared; the spread is (max - min) / median over the repeats.

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

CRYPT_BEST = ("crypt-nowq", "crypt-4k", "crypt-nowq-4k")
CMK = ("cmk", "cmk-4k", "cmk-nowq", "cmk-nowq-4k", "cmk-wq", "cmk-wq-4k")
# One colour per configuration: greys/greens for the baselines, warm
# colours for dm-cmk.
COLOURS = {"linear": "#7f7f7f", "crypt": "#1b7837", "crypt-nowq": "#5aae61",
           "crypt-4k": "#a6dba0", "crypt-nowq-4k": "#d9f0d3",
           "cmk": "#d7301f", "cmk-4k": "#fc8d59", "cmk-nowq": "#762a83",
           "cmk-nowq-4k": "#c2a5cf", "cmk-wq": "#2166ac",
           "cmk-wq-4k": "#92c5de"}
DEV_NAME = {"brd": "brd ramdisk", "nullb": "null_blk memory_backed=1",
            "nbtimer": "null_blk memory_backed=1 irqmode=2 (timer completion)"}


def fail(msg):
    print("bench: report: error: " + msg, file=sys.stderr)
    sys.exit(1)


# A dm-crypt read that decrypted its 512-byte sectors made at least one
# crypto_skcipher_decrypt() call per sector.
CALLS_PER_MIB = 2048


def decide_mode(m, cheap=False):
    """A run's mode from the evidence, not from the guest's label: the
    cipher calls per MiB of dm-crypt's read when counted; else a read
    that cost less vCPU time than tcrypt's cipher alone (CHEAP), which
    cannot have decrypted; else the speed bound when the cipher was
    measured; else "unchecked" (fail closed: a bound of 0, a cipher meter
    that failed, proves nothing).  Also whether the read was faster than
    the bound, kept as a warning."""
    fast = m["bound_mib_s"] > 0 and m["crypt_mib_s"] > m["bound_mib_s"]
    if m["calls_per_mib"] is not None:
        mode = ("decrypting" if m["calls_per_mib"] >= CALLS_PER_MIB
                else "not-decrypting")
    elif cheap:
        mode = "not-decrypting"
    elif m["bound_mib_s"] > 0:
        mode = "not-decrypting" if fast else "decrypting"
    else:
        mode = "unchecked"
    return mode, fast


def parse(path):
    info, cipher, fio, agent, prof = {}, {}, {}, [], {}
    info["drivers"], info["dd"], info["mode"] = {}, [], {}
    info["tcrypt"], info["devs"], info["busy"] = {}, {}, {}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError as e:
        fail("cannot read %s: %s" % (path, e))
    for line in lines:
        f = line.split()
        if len(f) < 2 or f[0] != "BENCH":
            continue
        try:
            if f[1] == "info":
                info[f[2]] = " ".join(f[3:])
            elif f[1] == "time":
                info.setdefault("phase_ms", {})[f[2]] = int(f[3])
            elif f[1] == "ceil":
                # ceil <sector> <threads> <run> <MiB/s> <driver>
                key = "%sB-%sthr" % (f[2], f[3])
                c = cipher.setdefault(key, {"size": int(f[2]),
                                            "threads": int(f[3]),
                                            "mib_s": [], "run": [],
                                            "driver": f[6]})
                c["mib_s"].append(float(f[5]))
                c["run"].append(int(f[4]))
            elif f[1] == "tcrypt":
                # tcrypt <run> <bytes> <ms/MiB> <driver>
                info["tcrypt"].setdefault(int(f[2]), {})[int(f[3])] = {
                    "ms_per_mib": float(f[4]), "driver": f[5]}
            elif f[1] == "dev":
                # dev <config> <major:minor> <target> <cipher|->
                k = "%s %s" % (f[4], f[5])
                info["devs"][k] = info["devs"].get(k, 0) + 1
            elif f[1] == "driver":
                d = info["drivers"].setdefault("%s/%s" % (f[2], f[3]), [])
                if f[4] not in d:
                    d.append(f[4])
            elif f[1] == "dd":
                info["dd"].append({"run": int(f[2]), "config": f[3],
                                   "mib_s": float(f[4]),
                                   "busy_vcpus": float(f[5]),
                                   "ctxsw_per_mib": float(f[6])})
            elif f[1] == "mode":
                # mode <run> <guest's label> <MiB/s> <bound> [<calls/MiB>|-]
                calls = f[6] if len(f) > 6 else "-"
                m = {"guest_mode": f[3], "crypt_mib_s": float(f[4]),
                     "bound_mib_s": float(f[5]),
                     "calls_per_mib": None if calls == "-" else float(calls)}
                run = int(f[2])
                m["mode"], m["fast"] = decide_mode(
                    m, run in cheaper_than_cipher(info, ("crypt",)))
                info["mode"][run] = m
            elif f[1] == "fio":
                dev, cfg, run, wl = f[2], f[3], int(f[4]), f[5]
                p = fio.setdefault(dev, {}).setdefault(cfg, {}).setdefault(
                    wl, {"kib_s": [], "iops": [], "run": []})
                p["kib_s"].append(int(f[6]))
                p["iops"].append(int(f[7]))
                p["run"].append(run)
            elif f[1] == "busy":
                # busy <dev> <cfg> <run> <wl> <busy vCPUs>
                info["busy"]["%s %s %s %d" % (f[2], f[3], f[5], int(f[4]))] = \
                    float(f[6])
            elif f[1] == "agent":
                agent.append({"boot_to_usable_ms": int(f[3]),
                              "revoke_to_wipe_ms": int(f[4])})
            elif f[1] == "prof":
                # prof <dev> <cfg> <wl> (mib_s V | cat NAME PCT | sym PCT SYM)
                p = prof.setdefault(" ".join(f[2:5]), {
                    "dev": f[2], "config": f[3], "workload": f[4],
                    "mib_s": None, "cat": {}, "top": []})
                if f[5] == "mib_s":
                    p["mib_s"] = float(f[6])
                elif f[5] == "cat":
                    p["cat"][f[6]] = float(f[7])
                elif f[5] == "sym":
                    p["top"].append([float(f[6]), f[7]])
        except (IndexError, ValueError):
            print("bench: report: skipping malformed line: " + line,
                  file=sys.stderr)
    return info, cipher, fio, agent, prof


def parse_moto(path):
    """BENCH moto <run> <boot_to_usable_ms> <revoke_to_wipe_ms> lines."""
    runs = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return runs
    for line in lines:
        f = line.split()
        if len(f) == 5 and f[:2] == ["BENCH", "moto"]:
            try:
                runs.append({"boot_to_usable_ms": int(f[3]),
                             "revoke_to_wipe_ms": int(f[4])})
            except ValueError:
                pass
    return runs


def print_prof(kver, prof, out, path):
    """The category table on @out, every profile's top symbols in @path."""
    cats = ("idle", "cipher", "copy", "fio", "kernel")
    out.write("\n-- where the CPU time goes: perf cpu-clock samples of the "
              "whole guest, 2 s each; % of all vCPU time --\n")
    out.write("%-22s %-8s %-11s %7s" % ("workload", "device", "config",
                                        "MiB/s")
              + "".join(" %7s" % c for c in cats) + "\n")
    with open(path, "w") as top:
        for key in sorted(prof, key=lambda k: (prof[k]["workload"],
                                               prof[k]["dev"],
                                               prof[k]["config"])):
            p = prof[key]
            out.write("%-22s %-8s %-11s %7s" % (
                p["workload"], p["dev"], p["config"],
                "%.1f" % p["mib_s"] if p["mib_s"] is not None else "-")
                + "".join(" %6.1f%%" % p["cat"].get(c, 0.0) for c in cats)
                + "\n")
            top.write("== %s %s %s (kernel %s)\n" % (
                p["dev"], p["config"], p["workload"], kver))
            for pct, sym in p["top"]:
                top.write("  %6.2f%%  %s\n" % (pct, sym))
    out.write("idle: a vCPU with nothing to run; cipher: AES/XTS code; copy: "
              "page clearing and copying;\nfio: user space.  Top symbols "
              "per profile: %s\n" % os.path.relpath(path))


def metric(wl, p):
    """Seq workloads in MiB/s, random ones in IOPS."""
    return [v / 1024 for v in p["kib_s"]] if wl.startswith("seq") \
        else [float(v) for v in p["iops"]]


def stats(vals):
    if not vals:
        return None
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med if med else 0.0
    return {"median": med, "min": min(vals), "max": max(vals),
            "spread": spread, "n": len(vals)}


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_r(r):
    return "   -  " if r is None else "%6.2f" % r


def wl_order(wl):
    return (not wl.startswith("seq"), wl)


def split_modes(info, fio):
    """The fio samples by the mode of the run they were taken in, so that
    no median or ratio mixes a run that decrypted with one that did not."""
    modes = {}
    for dev, cfgs in fio.items():
        for cfg, wls in cfgs.items():
            for wl, p in wls.items():
                for i, run in enumerate(p["run"]):
                    m = info["mode"].get(run, {}).get("mode", "unchecked")
                    q = modes.setdefault(m, {}).setdefault(dev, {}).setdefault(
                        cfg, {}).setdefault(wl, {"kib_s": [], "iops": [],
                                                 "run": []})
                    q["kib_s"].append(p["kib_s"][i])
                    q["iops"].append(p["iops"][i])
                    q["run"].append(run)
    return modes


def ceilings(cipher):
    """MiB/s of the cipher alone by (sector, threads, run): each repeat
    measures it next to its own fio runs, and the host's load moves it as
    much as everything else, so a sample is only ever set against the
    ceiling of its own repeat, never a median over repeats (which would
    mix the meter of one mode into the fractions of the other)."""
    ceil = {}
    for c in cipher.values():
        for run, v in zip(c["run"], c["mib_s"]):
            ceil[(c["size"], c["threads"], run)] = v
    return ceil


def ceiling_for(ceil, cfg, vcpus, run):
    """The most the cipher can do with the config's sector size in that
    repeat: every vCPU at the one-vCPU rate.  (The rate measured on all
    vCPUs at once is lower on a 2-core host that also runs other guests,
    down to below the one-vCPU rate when it is loaded.)"""
    one = ceil.get((4096 if cfg.endswith("-4k") else 512, 1, run))
    return one * vcpus if one else None


def of_ceiling(p, ceil, cfg, vcpus):
    """Median over the repeats of each repeat's MiB/s / its own ceiling."""
    fr = [ratio(k / 1024, ceiling_for(ceil, cfg, vcpus, run))
          for k, run in zip(p["kib_s"], p["run"])]
    fr = [f for f in fr if f is not None]
    return statistics.median(fr) if fr else None


def busy_cost(p, busy, dev, cfg, wl):
    """Medians over the repeats of the busy vCPUs in fio's steady window
    and of each repeat's vCPU ms per MiB (its busy vCPUs / its MiB/s)."""
    b, cost = [], []
    for k, run in zip(p["kib_s"], p["run"]):
        v = busy.get("%s %s %s %d" % (dev, cfg, wl, run))
        if v is None:
            continue
        b.append(v)
        if k > 0:
            cost.append(v * 1000 / (k / 1024))
    return (statistics.median(b) if b else None,
            statistics.median(cost) if cost else None)


def paired(wls, wl, a, b):
    """A's rate / B's rate repeat by repeat, for the repeats that measured
    both (None where B measured 0).  Within a repeat every configuration
    runs on a device in BENCH_CONFIGS order, a fio run each, so a pair is
    measured within a minute or so: drift of the host slower than that
    moves both sides alike, and one slow fio run moves one pair only."""
    if a not in wls or b not in wls:
        return {}
    rates = []
    for c in (a, b):
        runs = wls[c]["run"]
        if len(set(runs)) != len(runs):
            print("bench: report: %s %s measured more than once in a "
                  "repeat; the last one is paired" % (c, wl),
                  file=sys.stderr)
        rates.append(dict(zip(runs, metric(wl, wls[c]))))
    va, vb = rates
    return {run: va[run] / vb[run] if vb[run] else None
            for run in sorted(va) if run in vb}


def analyse_mode(fio, ceil, vcpus, busy):
    summary = {}
    for dev, cfgs in fio.items():
        sd = summary.setdefault(dev, {})
        for cfg, wls in cfgs.items():
            for wl, p in wls.items():
                s = stats(metric(wl, p))
                s["mib_s_median"] = statistics.median(p["kib_s"]) / 1024
                s["of_ceiling"] = of_ceiling(p, ceil, cfg, vcpus)
                s["busy_vcpus"], s["vcpu_ms_per_mib"] = busy_cost(
                    p, busy, dev, cfg, wl)
                s["runs"] = sorted(set(p["run"]))
                sd.setdefault(wl, {})[cfg] = s
    ratios = {}
    for dev, wls in summary.items():
        for wl, cfgs in wls.items():
            med = {c: s["median"] for c, s in cfgs.items()}
            best = [c for c in CRYPT_BEST if c in med]
            bestc = max(best, key=lambda c: med[c]) if best else None
            for cmk in CMK:
                if cmk not in med:
                    continue
                r = {
                    "vs_crypt_default": ratio(med[cmk], med.get("crypt")),
                    "vs_crypt_best": ratio(med[cmk], med.get(bestc)),
                    "crypt_best_config": bestc,
                    # the cipher alone on every vCPU, in the kernel, with
                    # this config's sector size
                    "vs_ceiling": cfgs[cmk]["of_ceiling"],
                    "vs_linear": ratio(med[cmk], med.get("linear")),
                    # dm-cmk's own choice of inline crypto or workqueue
                    # against the workqueue for every bio
                    "vs_force_workqueue": ratio(
                        med[cmk], med.get(cmk.replace("cmk", "cmk-wq", 1)
                                          if "nowq" not in cmk else None)),
                }
                ratios.setdefault(dev, {}).setdefault(wl, {})[cmk] = r
    pairs = {}
    for dev, cfgs in fio.items():
        for wl in {w for v in cfgs.values() for w in v}:
            pr = paired({c: v[wl] for c, v in cfgs.items() if wl in v},
                        wl, "cmk", "crypt")
            v = [r for r in pr.values() if r is not None]
            if v:
                pairs.setdefault(dev, {})[wl] = {
                    "by_run": pr, "median": statistics.median(v),
                    "at_least_1": sum(r >= 1.0 for r in v), "n": len(v)}
    return {"summary": summary, "ratios": ratios, "paired": pairs}


def analyse(kver, info, cipher, fio, agent):
    vcpus = int(info.get("vcpus", "2"))
    ceil = ceilings(cipher)
    modes = {m: analyse_mode(f, ceil, vcpus, info["busy"])
             for m, f in split_modes(info, fio).items()}
    ag = None
    if agent:
        ag = {k: stats([a[k] for a in agent if a[k] >= 0])
              for k in ("boot_to_usable_ms", "revoke_to_wipe_ms")}
    return {"info": info, "vcpus": vcpus, "cipher_ceiling": cipher,
            "modes": modes, "agent_raw": agent, "agent": ag}


def tcrypt_cost(info, cfg, run):
    """tcrypt's ms of one vCPU per MiB for CONFIG's sector size in RUN:
    its 4096-byte requests for the -4k sets, else its 1024-byte ones (it
    has no 512; a 512-byte request costs at least as much per byte), or
    None."""
    t = info["tcrypt"].get(run, {}).get(4096 if cfg.endswith("-4k")
                                        else 1024)
    return t["ms_per_mib"] if t else None


# A read that decrypted cannot cost less vCPU time than the cipher alone;
# the margin is for /proc/stat's tick accounting and a tcrypt sample the
# host's load slowed (one was 8x).  The fast mode of issue 18 was ~0.2x.
CHEAPER_THAN_CIPHER = 0.5


def cheaper_than_cipher(info, configs=("crypt", "cmk")):
    """Runs whose dd read of one of CONFIGS spent less than
    CHEAPER_THAN_CIPHER x tcrypt's vCPU time per MiB for the cipher alone:
    such a read cannot have decrypted."""
    bad = set()
    for d in info["dd"]:
        t = tcrypt_cost(info, d["config"], d["run"])
        if d["config"] in configs and t and d["mib_s"] > 0 and \
                d["busy_vcpus"] * 1000 / d["mib_s"] < \
                CHEAPER_THAN_CIPHER * t:
            bad.add(d["run"])
    return sorted(bad)


def print_check(res, out):
    """The drivers, the dd mode check and the cipher ceiling."""
    w = out.write
    info = res["info"]
    w("xts(aes) alone, in the kernel (cmk_cipher_bench.ko, one request per "
      "sector; MiB/s, median [spread]):\n")
    for k in sorted(res["cipher_ceiling"], key=lambda k: (
            res["cipher_ceiling"][k]["size"],
            res["cipher_ceiling"][k]["threads"])):
        c = res["cipher_ceiling"][k]
        s = stats(c["mib_s"])
        w("  %5d B  %d thread(s)  %8.1f  [%3.0f%%]  %s\n" % (
            c["size"], c["threads"], s["median"], 100 * s["spread"],
            c["driver"]))
    if info["tcrypt"]:
        w("xts(aes) alone, tcrypt (mode 500, sec=0: 8 requests in TSC "
          "cycles, 512-bit key, decryption; ms of one vCPU per MiB):\n")
        for run, t in sorted(info["tcrypt"].items()):
            w("  run %d  %s  %s\n" % (run, "  ".join(
                "%d B %.2f ms/MiB (%.0f MiB/s)" % (b, v["ms_per_mib"],
                                                   1000 / v["ms_per_mib"])
                for b, v in sorted(t.items())),
                next(iter(t.values()))["driver"]))
    if info["devs"]:
        w("devices timed, checked as dm devices of their target: %s\n" %
          ", ".join("%s x%d" % (k.replace(" -", ""), v)
                    for k, v in sorted(info["devs"].items())))
    if info["drivers"]:
        seen = {}
        for k, ds in info["drivers"].items():
            seen.setdefault(",".join(ds), []).append(k)
        w("xts(aes) driver each target holds: %s\n" % "; ".join(
            "%s: %s" % (d, " ".join(sorted(v))) for d, v in sorted(
                seen.items())))
    if info["dd"]:
        w("mode check, per run: dd O_DIRECT 128 KiB read of the device, "
          "timed by /proc/uptime\n")
        w("  (cpu = vCPU ms per MiB read; x tcrypt = cpu / tcrypt's "
          "cipher alone, < %.1f cannot have decrypted; /tcrypt = MiB/s / "
          "(tcrypt's one-vCPU rate x vCPUs))\n" % CHEAPER_THAN_CIPHER)
        w("  %3s %-8s %9s %10s %11s %8s %9s %8s  %s\n" % (
            "run", "config", "MiB/s", "busy vCPU", "ctxsw/MiB", "cpu",
            "x tcrypt", "/tcrypt", "mode"))
        for d in info["dd"]:
            m = info["mode"].get(d["run"], {})
            t = tcrypt_cost(info, d["config"], d["run"])
            cpu = d["busy_vcpus"] * 1000 / d["mib_s"] if d["mib_s"] else 0
            w("  %3d %-8s %9.1f %10.2f %11.0f %8.1f %9s %8s  %s\n" % (
                d["run"], d["config"], d["mib_s"], d["busy_vcpus"],
                d["ctxsw_per_mib"], cpu,
                "%.2f" % (cpu / t) if t else "-",
                "%.2f" % (d["mib_s"] * t / 1000 / res["vcpus"]) if t
                else "-", "%s (%s cipher calls/MiB, bound %.1f "
                "MiB/s)" % (m["mode"], "?" if m["calls_per_mib"] is None
                            else "%.0f" % m["calls_per_mib"],
                            m["bound_mib_s"]) if d["config"] == "crypt"
                and m else ""))
    for mode, why in (("not-decrypting", "read dm-crypt without decrypting "
                       "(too few cipher calls, or faster than its cipher "
                       "can decrypt)"),
                      ("unchecked", "could not be checked (no cipher call "
                       "count and no cipher rate)")):
        bad = [r for r, m in info["mode"].items() if m["mode"] == mode]
        if bad:
            w("WARNING: run(s) %s %s: their numbers are reported apart\n"
              % (",".join(map(str, sorted(bad))), why))
    cheap = cheaper_than_cipher(info)
    if cheap:
        w("WARNING: run(s) %s: a dm-crypt or dm-cmk dd read spent less "
          "than %.1fx the vCPU time per MiB of tcrypt's cipher alone: it "
          "cannot have decrypted what it read\n" % (
              ",".join(map(str, cheap)), CHEAPER_THAN_CIPHER))
    fast = [r for r, m in info["mode"].items()
            if m["fast"] and m["mode"] == "decrypting"]
    if fast:
        w("WARNING: run(s) %s read dm-crypt faster than its cipher alone, "
          "though it called the cipher for every sector: timer noise or "
          "a meter that ran slow\n" % ",".join(map(str, sorted(fast))))


def print_tables(kver, res, out):
    w = out.write
    info = res["info"]
    w("\n=== kernel %s, %s vCPUs, %s run(s) per point, fio runtime %s (ramp %s) "
      "===\n" % (kver, res["vcpus"], info.get("runs", "?"),
                 info.get("runtime", "?"), info.get("ramp", "?")))
    if info.get("workloads"):
        w("workloads (BENCH_WORKLOADS): %s\n" % info["workloads"])
    print_check(res, out)
    for mode, mres in sorted(res["modes"].items()):
        runs = sorted({r for wls in mres["summary"].values()
                       for cfgs in wls.values() for s in cfgs.values()
                       for r in s["runs"]})
        w("\n##### mode: %s (run(s) %s)\n" % (
            mode, ",".join(map(str, runs))))
        print_mode(mres, out)


def print_mode(mres, out):
    w = out.write
    for dev, wls in sorted(mres["summary"].items()):
        cfgs = [c for c in ("linear", "crypt") + CRYPT_BEST + CMK
                if any(c in v for v in wls.values())]
        w("\n-- %s: medians (seq: MiB/s, rand: IOPS) [spread %%] --\n"
          % DEV_NAME.get(dev, dev))
        w("%-20s" % "workload" + "".join("%16s" % c for c in cfgs) + "\n")
        for wl in sorted(wls, key=wl_order):
            row = "%-20s" % wl
            for c in cfgs:
                s = wls[wl].get(c)
                row += "%16s" % ("-" if s is None else "%.0f [%2.0f%%]" % (
                    s["median"], 100 * s["spread"]))
            w(row + "\n")
        w("\n-- %s: MiB/s as a fraction of the cipher alone (one-vCPU rate "
          "x vCPUs, same sector size) --\n" % DEV_NAME.get(dev, dev))
        w("%-20s" % "workload" + "".join("%12s" % c for c in cfgs) + "\n")
        for wl in sorted(wls, key=wl_order):
            w("%-20s" % wl + "".join("%12s" % (
                "-" if wls[wl].get(c, {}).get("of_ceiling") is None
                else "%.2f" % wls[wl][c]["of_ceiling"]) for c in cfgs)
                + "\n")
        fast = ["%s %s (%.2f)" % (c, wl, wls[wl][c]["of_ceiling"])
                for wl in sorted(wls, key=wl_order) for c in cfgs
                if c != "linear" and wls[wl].get(c, {}).get("of_ceiling")
                and wls[wl][c]["of_ceiling"] > 1.25]
        if fast:
            w("WARNING: faster than the cipher alone can decrypt (timer "
              "noise, or not decrypting): %s\n" % ", ".join(fast))
        if any(s.get("busy_vcpus") is not None
               for v in wls.values() for s in v.values()):
            w("\n-- %s: busy vCPUs in fio's steady window / vCPU ms per "
              "MiB (medians; /proc/stat) --\n" % DEV_NAME.get(dev, dev))
            w("%-20s" % "workload" + "".join("%16s" % c for c in cfgs)
              + "\n")
            for wl in sorted(wls, key=wl_order):
                row = "%-20s" % wl
                for c in cfgs:
                    s = wls[wl].get(c, {})
                    row += "%16s" % ("-" if s.get("busy_vcpus") is None
                                     else "%.2f/%s" % (
                                         s["busy_vcpus"],
                                         "-" if s["vcpu_ms_per_mib"] is None
                                         else "%.1f" % s["vcpu_ms_per_mib"]))
                w(row + "\n")
        rat = mres["ratios"].get(dev, {})
        w("\n-- %s: ratios (>1 means dm-cmk is faster) --\n"
          % DEV_NAME.get(dev, dev))
        w("%-20s| %-31s | %s\n" % (
            "", "dm-cmk default", "best dm-cmk option set"))
        hdr = "%7s%7s%8s%8s" % ("/crypt", "/best", "/ceil", "/linear")
        w("%-20s| %s | %-12s%s\n" % ("workload", hdr, "set", hdr))
        for wl in sorted(rat, key=wl_order):
            r = rat[wl]
            d = r.get("cmk", {})
            meds = {c: wls[wl][c]["median"] for c in r}
            bc = max(meds, key=meds.get)
            b = r[bc]

            def four(x):
                return "%7s%7s%8s%8s" % tuple(
                    fmt_r(x.get(k)).strip() if x.get(k) is not None else "-"
                    for k in ("vs_crypt_default", "vs_crypt_best",
                              "vs_ceiling", "vs_linear"))
            w("%-20s| %s | %-12s%s\n" % (wl, four(d), bc, four(b)))
        pr = mres.get("paired", {}).get(dev, {})
        if pr:
            runs = sorted({r for v in pr.values() for r in v["by_run"]})
            w("\n-- %s: dm-cmk default / dm-crypt default, repeat by "
              "repeat --\n" % DEV_NAME.get(dev, dev))
            w("%-20s" % "workload" + "".join("%7s" % ("r%d" % r)
                                              for r in runs)
              + "%8s%8s\n" % ("median", ">=1.0"))
            for wl in sorted(pr, key=wl_order):
                v = pr[wl]
                w("%-20s" % wl + "".join(
                    "%7s" % ("-" if r not in v["by_run"] else "n/a"
                             if v["by_run"][r] is None
                             else "%.2f" % v["by_run"][r]) for r in runs)
                  + "%8.2f%8s\n" % (v["median"], "%d/%d" % (
                      v["at_least_1"], v["n"])))
        if any(r.get("cmk", {}).get("vs_force_workqueue") is not None
               for r in rat.values()):
            w("\n-- %s: dm-cmk's per-bio choice / force_workqueue (the "
              "behaviour before it) --\n" % DEV_NAME.get(dev, dev))
            w("%-20s%12s%12s\n" % ("workload", "cmk/wq", "cmk-4k/wq-4k"))
            for wl in sorted(rat, key=wl_order):
                w("%-20s%12s%12s\n" % (wl, *(
                    fmt_r(rat[wl].get(c, {}).get("vs_force_workqueue")).strip()
                    if rat[wl].get(c, {}).get("vs_force_workqueue")
                    is not None else "-" for c in ("cmk", "cmk-4k"))))


def print_agent(res, out):
    w = out.write
    if res["agent"]:
        a = res["agent"]
        w("\nagent (local provider, check_interval_ms 200), %d run(s):\n"
          % len(res["agent_raw"]))
        for k in ("boot_to_usable_ms", "revoke_to_wipe_ms"):
            s = a[k]
            if s:
                w("  %-20s median %5.0f ms  (min %d, max %d)\n" % (
                    k, s["median"], s["min"], s["max"]))


def gnuplot(outdir, kver, res):
    made = []
    if not shutil.which("gnuplot"):
        print("bench: report: gnuplot not found (scripts/deps.sh installs "
              "gnuplot-nox): tables only, no charts", file=sys.stderr)
        return made
    for mode, mres in sorted(res["modes"].items()):
        made += gnuplot_mode(outdir, kver, mode, mres)
    return made


def gnuplot_mode(outdir, kver, mode, mres):
    made = []
    for dev, wls in sorted(mres["summary"].items()):
        cfgs = [c for c in ("linear", "crypt") + CRYPT_BEST + CMK
                if any(c in v for v in wls.values())]
        for kind, unit in (("seq", "MiB/s"), ("rand", "IOPS")):
            rows = sorted(wl for wl in wls if wl.startswith(kind))
            if not rows:
                continue
            base = "%s-%s-%s" % (kver, dev, kind)
            if mode != "decrypting":
                base += "-" + mode
            dat = os.path.join(outdir, base + ".dat")
            with open(dat, "w") as f:
                f.write("workload " + " ".join(cfgs) + "\n")
                for wl in rows:
                    f.write(wl + " " + " ".join(
                        "%.1f" % wls[wl][c]["median"] if c in wls[wl]
                        else "0" for c in cfgs) + "\n")
            png = os.path.join(outdir, base + ".png")
            plot = ", ".join(
                "'%s' using %d:xtic(1) title columnheader lc rgb '%s'"
                % (dat, i + 2, COLOURS.get(c, "#000000"))
                for i, c in enumerate(cfgs))
            script = "\n".join([
                "set terminal pngcairo size 1400,600 noenhanced"
                if gp_has_cairo() else "set terminal png size 1400,600",
                "set output '%s'" % png,
                "set title '%s on %s: medians (QEMU TCG guest; compare "
                "ratios, not absolute values)' noenhanced" % (kver, dev),
                "set style data histograms",
                "set style histogram clustered gap 1",
                "set style fill solid 0.8 border -1",
                "set key outside right top",
                "set ylabel '%s'" % unit,
                "set yrange [0:*]",
                "set xtics rotate by -30 noenhanced",
                "set grid ytics",
                "plot " + plot, ""])
            r = subprocess.run(["gnuplot"], input=script, text=True,
                               capture_output=True)
            if r.returncode:
                print("bench: report: gnuplot failed for %s: %s"
                      % (png, r.stderr.strip()), file=sys.stderr)
            else:
                made.append(os.path.basename(png))
    return made


_cairo = None


def gp_has_cairo():
    global _cairo
    if _cairo is None:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], text=True,
                           capture_output=True)
        _cairo = "pngcairo" in (r.stdout + r.stderr)
    return _cairo


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--start", default="")
    ap.add_argument("--wall", default="")
    ap.add_argument("--load", default="")
    ap.add_argument("--others", default="")
    ap.add_argument("kvers", nargs="+")
    a = ap.parse_args()
    doc = {"started": a.start, "wall_s": a.wall,
           "host": {"loadavg_at_start": a.load,
                    "other_qemus_at_start": a.others,
                    "nproc": os.cpu_count()},
           "note": "QEMU TCG guest: absolute numbers mean little; compare "
                   "ratios within one run",
           "kernels": {}}
    out = sys.stdout
    out.write("NOTE: QEMU TCG guest (no KVM). Absolute numbers mean little; "
              "the ratios, measured in the same run, are what matter.\n")
    if a.load:
        out.write("host load average at start: %s; other QEMUs running: %s"
                  "\n" % (a.load, a.others))
    for k in a.kvers:
        info, cipher, fio, agent, prof = parse(
            os.path.join(a.out, k, "results.log"))
        if not fio:
            print("bench: report: no fio results for %s (see %s)"
                  % (k, os.path.join(a.out, k)), file=sys.stderr)
            continue
        res = analyse(k, info, cipher, fio, agent)
        res["charts"] = gnuplot(a.out, k, res)
        res["profiles"] = prof
        doc["kernels"][k] = res
        print_tables(k, res, out)
        print_agent(res, out)
        if res["profiles"]:
            print_prof(k, res["profiles"], out,
                       os.path.join(a.out, k, "profiles.txt"))
    if not doc["kernels"]:
        fail("no results at all")
    out.write("\n/crypt = dm-cmk / dm-crypt default; /best = dm-cmk / the "
              "better of dm-crypt no_*_workqueue and sector_size:4096;\n"
              "/ceil = dm-cmk MiB/s / (xts(aes) alone in the kernel, one-vCPU "
              "rate, same sector size, x vCPUs); /linear = dm-cmk / dm-linear."
              "\nmode: decrypting = dm-crypt's device called the cipher "
              "for every sector it read (counted in a re-read of its first "
              "MiBs; or, uncounted, its dd read was within what the cipher "
              "can do); any other mode is reported apart.\n")
    moto = parse_moto(os.path.join(a.out, "moto.log"))
    if moto:
        doc["agent_moto_raw"] = moto
        doc["agent_moto"] = {k: stats([m[k] for m in moto if m[k] >= 0])
                             for k in ("boot_to_usable_ms",
                                       "revoke_to_wipe_ms")}
        out.write("\nagent (AWS provider against moto on the host, via "
                  "guestfwd; tests/kms/aws_guest.sh), %d run(s):\n"
                  % len(moto))
        for k in ("boot_to_usable_ms", "revoke_to_wipe_ms"):
            st = doc["agent_moto"][k]
            if st:
                out.write("  %-20s median %5.0f ms  (min %d, max %d)\n" % (
                    k, st["median"], st["min"], st["max"]))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
