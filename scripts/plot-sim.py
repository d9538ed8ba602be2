#!/usr/bin/env python3
"""Draws the results of hekate-sim runs as one PNG: the completion-time CDF, the seeder's throughput over time and
the peers unchoked over time, every run overlaid (a sweep, or sim and real side by side).

Usage: plot-sim.py -o OUT.png RUN [RUN ...]
  RUN is LABEL=PREFIX or PREFIX, where PREFIX.metrics.csv (hekate-sim --metrics-csv) and PREFIX.peers.csv
  (--peers-csv) exist; the label defaults to PREFIX's file name.
Needs python3-matplotlib (scripts/setup.sh installs it)."""
import argparse
import csv
import os
import sys


def load_run(prefix):
    """(completion times after arrival in s, [(t, B/s)], [(t, unchoked)]) of one run."""
    times = []
    with open(prefix + ".peers.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["end_reason"] == "complete":
                times.append(float(row["complete_s"]) - float(row["arrival_s"]))
    times.sort()
    rate, unchoked = [], []
    with open(prefix + ".metrics.csv", newline="") as f:
        prev = None
        for row in csv.DictReader(f):
            t, sent = float(row["time_s"]), int(row["data_bytes_sent"])
            unchoked.append((t, int(row["unchoked"])))
            if prev and t > prev[0]:
                rate.append((t, (sent - prev[1]) / (t - prev[0])))
            prev = (t, sent)
    return times, rate, unchoked


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, help="the PNG to write")
    ap.add_argument("--title", default="", help="the figure's title")
    ap.add_argument("runs", nargs="+", metavar="RUN")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot-sim.py: python3-matplotlib is not installed (scripts/setup.sh)")
    fig, (cdf, thr, unc) = plt.subplots(1, 3, figsize=(16, 4.8))
    for spec in args.runs:
        label, _, prefix = spec.rpartition("=")
        label = label or os.path.basename(prefix)
        times, rate, unchoked = load_run(prefix)
        n = len(times)
        if n:
            cdf.step(times, [(i + 1) / n for i in range(n)], where="post", label=f"{label} ({n} peers)")
        if rate:
            thr.plot([t for t, _ in rate], [r / 1e6 for _, r in rate], label=label)
        if unchoked:
            unc.step([t for t, _ in unchoked], [u for _, u in unchoked], where="post", label=label)
    cdf.set(title="completion time (after arrival)", xlabel="s", ylabel="fraction of completed peers")
    thr.set(title="seeder throughput (data sent per sample)", xlabel="simulated time, s", ylabel="MB/s")
    unc.set(title="peers unchoked", xlabel="simulated time, s", ylabel="peers")
    for ax in (cdf, thr, unc):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    print(f"plot-sim.py: wrote {args.output}")


if __name__ == "__main__":
    main()
