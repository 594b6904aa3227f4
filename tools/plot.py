#!/usr/bin/python3
"""Plots Hone runs: metrics.jsonl of one or more run directories, overlaid, and the Pass@k
curves of `hone eval` reports, as PNG files and one self-contained HTML page.

  tools/plot.py RUN_DIR [RUN_DIR ...] [--eval EVAL_JSON ...] --out DIR [--window N]

Each RUN_DIR holds a metrics.jsonl (hone train or hone sft); the run's label is the
directory's name. Writes DIR/<panel>.png for every panel with data, DIR/passk.png for
the eval reports, and DIR/index.html with every image inlined (it can be mailed or
attached as is). Uses Debian's python3-matplotlib (tools/install-deps.sh installs it).
"""
import argparse
import base64
import html
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

# (file name, title, y label, [(metrics.jsonl key, legend suffix)], moving average?)
PANELS = [
    ("reward", "Reward", "mean reward", [("reward_mean", "")], True),
    ("accuracy", "Accuracy (boxed integer correct)", "fraction", [("accuracy", "")], True),
    ("format_rate", "Format rate", "fraction", [("format_rate", "")], True),
    ("response_length", "Response length", "tokens", [("response_length_mean", " mean"),
                                                        ("response_length_max", " max")], False),
    ("kl", "KL to the reference", "KL", [("kl", "")], False),
    ("entropy", "Entropy", "nats", [("entropy", "")], False),
    ("validation", "Validation accuracy", "fraction", [("val_accuracy", "")], False),
    ("sft_loss", "SFT loss", "loss", [("sft_loss", "")], True),
]
PHASES = ["gen", "reward", "old_logp", "ref", "train", "sync", "val", "step"]


def moving_average(values, window):
    """Trailing mean over the last `window` finite values (None and NaN are skipped, and
    give None until a finite value has been seen)."""
    out, recent = [], []
    for v in values:
        if v is not None and math.isfinite(v):
            recent.append(v)
            if len(recent) > window:
                recent.pop(0)
        out.append(sum(recent) / len(recent) if recent else None)
    return out


def load_run(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"plot: {path} not found: give run directories of hone train or hone sft")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"plot: {path}:{number}: not a JSON line ({e})")
    if not rows:
        raise SystemExit(f"plot: {path} has no steps")
    label = os.path.basename(os.path.normpath(run_dir))
    return label, rows


def series(rows, key):
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(r["step"])
            ys.append(float(v))
    return xs, ys


def plot_panel(runs, title, ylabel, keys, with_average, window, path):
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for i, (label, rows) in enumerate(runs):
        color = f"C{i}"
        for j, (key, suffix) in enumerate(keys):
            xs, ys = series(rows, key)
            if not xs:
                continue
            style = "-" if j == 0 else "--"
            alpha = 0.35 if with_average else 1.0
            ax.plot(xs, ys, style, color=color, alpha=alpha, label=f"{label}{suffix}")
            if with_average and len(xs) > 1:
                ax.plot(xs, moving_average(ys, window), style, color=color, linewidth=2,
                        label=f"{label}{suffix} ({window}-step average)")
            drawn += 1
    if not drawn:
        plt.close(fig)
        return False
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_phases(runs, path):
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for i, (label, rows) in enumerate(runs):
        for j, phase in enumerate(PHASES):
            xs, ys = series(rows, f"seconds_{phase}")
            if not xs:
                continue
            ax.plot(xs, ys, ["-", "--", ":", "-."][i % 4], color=f"C{j}", label=f"{label} {phase}")
            drawn += 1
    if not drawn:
        plt.close(fig)
        return False
    ax.set_title("Seconds per phase")
    ax.set_xlabel("step")
    ax.set_ylabel("seconds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_pass_at_k(reports, path):
    """Pass@k against k for every model of every eval report, side by side."""
    fig, axes = plt.subplots(1, len(reports), figsize=(6 * len(reports), 4), squeeze=False)
    for ax, (name, report) in zip(axes[0], reports):
        for i, model in enumerate(report.get("models", [])):
            ks = sorted(int(k) for k in model.get("pass_at_k", {}))
            if not ks:
                continue
            values = [model["pass_at_k"][str(k)] for k in ks]
            label = f"{model.get('label', i)}: {model.get('path', '')}"
            ax.plot(ks, values, "o-", color=f"C{i}", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_ylim(0, 1)
        ax.set_title(f"{name} ({report.get('num_prompts', '?')} prompts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_html(out, images, runs, reports):
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Hone runs</title>",
             "<style>body{font-family:sans-serif;margin:2em} img{max-width:48%;margin:0.5%} "
             "table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>",
             "<h1>Hone runs</h1><table><tr><th>run</th><th>steps</th><th>last reward</th>"
             "<th>last accuracy</th></tr>"]
    for label, rows in runs:
        last = rows[-1]
        cells = [label, str(last.get("step")), f"{last.get('reward_mean', float('nan')):.4g}"
                 if isinstance(last.get("reward_mean"), (int, float)) else "",
                 f"{last.get('accuracy', float('nan')):.4g}" if isinstance(last.get("accuracy"), (int, float)) else ""]
        parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    for name, _ in reports:
        parts.append(f"<p>eval report: {html.escape(name)}</p>")
    for image in images:
        with open(os.path.join(out, image), "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        parts.append(f"<img alt='{html.escape(image)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>\n")
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write("\n".join(parts))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", help="run directories holding metrics.jsonl")
    ap.add_argument("--eval", nargs="+", default=[], help="hone eval JSON reports (Pass@k curves)")
    ap.add_argument("--out", required=True, help="directory for the PNG files and index.html")
    ap.add_argument("--window", type=int, default=10, help="steps in the moving average (default 10)")
    a = ap.parse_args(argv)
    if not a.runs and not a.eval:
        ap.error("give at least one run directory or --eval report")
    if a.window < 1:
        ap.error("--window must be at least 1")
    runs = [load_run(d) for d in a.runs]
    reports = []
    for path in a.eval:
        with open(path) as f:
            reports.append((os.path.basename(path), json.load(f)))
    os.makedirs(a.out, exist_ok=True)
    images = []
    for name, title, ylabel, keys, average in PANELS:
        if runs and plot_panel(runs, title, ylabel, keys, average, a.window, os.path.join(a.out, f"{name}.png")):
            images.append(f"{name}.png")
    if runs and plot_phases(runs, os.path.join(a.out, "seconds_per_phase.png")):
        images.append("seconds_per_phase.png")
    if reports:
        plot_pass_at_k(reports, os.path.join(a.out, "passk.png"))
        images.append("passk.png")
    write_html(a.out, images, runs, reports)
    print(f"plot: wrote {len(images)} images and index.html to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
