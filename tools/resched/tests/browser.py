#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The tool's pictures as a user sees them: drawn from the saved module files of tests/fixtures, rendered
by headless Chromium to PNG, and the screenshot read back (Pillow). Checks that what is on the screen says
what the files say: the heat map's cells get darker as their counts grow and are white where nothing was
sent, one cell per (sender, target) of `matrix`; the bars of `plot pairs` are as long as their counts;
the flame graph's root spans the width. Prints one `ok`/`not ok` line per check, then `N passed, N failed`.

Usage: browser.py TOOL [OUTDIR]"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}")
    if not ok and detail:
        for line in str(detail).splitlines()[:20]:
            print(f"#   {line}")


def tree(root):
    """The fixtures in the module's layout (latency_X -> latency/X, stacks_X -> stacks/X)."""
    for sub in ("latency", "stacks"):
        os.makedirs(f"{root}/{sub}", exist_ok=True)
    for name in os.listdir(f"{HERE}/fixtures"):
        dest = name
        for sub in ("latency", "stacks"):
            if name.startswith(sub + "_"):
                dest = f"{sub}/{name[len(sub) + 1:]}"
        shutil.copy(f"{HERE}/fixtures/{name}", f"{root}/{dest}")
    with open(f"{root}/cpus", "w") as f:
        f.write("0-3\n")


def render(svg, png, work):
    """Chromium's screenshot of `svg` at the SVG's own size."""
    root = ET.parse(svg).getroot()
    w, h = int(float(root.get("width", "1200"))), int(float(root.get("height", "800")))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={work}/chromium", f"--window-size={w},{h}",
           f"--screenshot={png}", f"file://{svg}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not os.path.exists(png):
        raise RuntimeError(f"chromium failed ({r.returncode}): {r.stderr[-500:]}")
    return Image.open(png).convert("RGB")


def hexrgb(s):
    s = s.lstrip("#")
    return tuple(int(s[i:i + 2], 16) for i in (0, 2, 4))


def near(a, b, tol=3):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def strip(tag):
    return tag.rsplit("}", 1)[-1]


def matrix_cal(fixture):
    """The CAL block of a matrix file: {(sender, target): count}."""
    cells, cpus, on = {}, [], False
    for line in open(fixture):
        if line.startswith("CAL:"):
            on = True
        elif on and line.split() and line.split()[0].startswith("CPU") and ":" not in line.split()[0]:
            cpus = [int(w[3:]) for w in line.split()]
        elif on and re.match(r"^CPU\d+:", line):
            s = int(line.split(":")[0][3:])
            for t, v in zip(cpus, line.split()[1:]):
                cells[(s, t)] = int(v)
        elif on and re.match(r"^[A-Z]+:", line):
            break
    return cells


def draw(tool, args, name, work, env):
    """Runs `resched ARGS --svg WORK/NAME.svg` (a check), then renders it: (screenshot, SVG root) or None."""
    svg, png = f"{work}/{name}.svg", f"{work}/{name}.png"
    r = subprocess.run([tool, *args, "--svg", svg], env=env, capture_output=True, text=True)
    check(f"{' '.join(args)} draws an SVG", r.returncode == 0 and os.path.exists(svg), r.stderr)
    if r.returncode != 0:
        return None
    return render(svg, png, work), ET.parse(svg).getroot()


def heat_map(tool, work, env):
    drawn = draw(tool, ["plot", "matrix"], "matrix", work, env)
    if not drawn:
        return
    img, root = drawn
    # The CAL panel is the right half; its cells are the filled squares there (not the background).
    width = int(float(root.get("width")))
    rects = [e for e in root.iter() if strip(e.tag) == "rect" and float(e.get("x")) >= width / 2
             and float(e.get("width")) < width / 4]
    texts = [(float(e.get("x")), float(e.get("y")), "".join(e.itertext()).strip())
             for e in root.iter() if strip(e.tag) == "text" and float(e.get("x")) >= width / 2]
    want = matrix_cal(f"{HERE}/fixtures/matrix")
    check(f"the CAL heat map has one cell per (sender, target) of the file ({len(rects)} = {len(want)})",
          len(rects) == len(want), f"{len(rects)} rects")
    # Each cell on screen: its colour where no digit is drawn (a corner), and the count written in it.
    shown, bad = [], []
    for e in rects:
        x, y, w, h = (float(e.get(k)) for k in ("x", "y", "width", "height"))
        px = img.getpixel((int(x + 3), int(y + 3)))
        if not near(px, hexrgb(e.get("fill"))):
            bad.append(f"cell at {x},{y}: screen {px}, SVG {e.get('fill')}")
        inside = [t for tx, ty, t in texts if x <= tx <= x + w and y <= ty <= y + h and t.isdigit()]
        shown.append((int(inside[0]) if inside else 0, px))
    check("the screenshot shows each cell in its SVG colour", not bad, "\n".join(bad))
    counts = sorted(c for c, _ in shown)
    check(f"the counts written in the cells are the file's ({sum(counts)} = {sum(want.values())})",
          counts == sorted(want.values()), f"{counts}\n{sorted(want.values())}")
    zero = [px for c, px in shown if c == 0]
    check(f"cells with nothing sent are white on screen ({len(zero)})",
          zero and all(near(px, (255, 255, 255)) for px in zero), str(zero))
    lum = sorted((c, sum(px)) for c, px in shown if c > 0)
    darker = all(a[1] >= b[1] for a, b in zip(lum, lum[1:]))
    check("on screen a cell is darker the more it counts (most counted: darkest)", darker and lum[0][1] > lum[-1][1],
          str(lum))


def bars(tool, work, env):
    drawn = draw(tool, ["plot", "pairs", "-n", "10"], "pairs", work, env)
    if not drawn:
        return
    img, root = drawn
    rects = [e for e in root.iter() if strip(e.tag) == "rect" and e.get("fill", "").upper() != "#FFFFFF"
             and float(e.get("height")) > 8]
    labels = {}
    for e in root.iter():
        t = "".join(e.itertext()).strip() if strip(e.tag) == "text" else ""
        if t.isdigit():
            labels[float(e.get("y"))] = int(t)
    # Each bar's length on screen: the run of its colour along its middle row, from the axis.
    lengths = []
    for e in rects:
        x, y, h = float(e.get("x")), float(e.get("y")), float(e.get("height"))
        row, colour = int(y + h / 2), hexrgb(e.get("fill"))
        n = 0
        while near(img.getpixel((int(x) + 1 + n, row)), colour, 8):
            n += 1
        count = min(labels.items(), key=lambda kv: abs(kv[0] - (y + h / 2)))[1] if labels else 0
        lengths.append((count, n + 1))
    pairs = sorted((int(l.split()[0]) for l in open(f"{HERE}/fixtures/pairs") if re.match(r"^\s*\d+ ", l)),
                   reverse=True)[:10]
    check(f"10 bars on screen, labelled with the file's 10 largest counts",
          sorted((c for c, _ in lengths), reverse=True) == pairs, f"{lengths}\n{pairs}")
    top = max(lengths)
    off = [(c, n) for c, n in lengths if abs(n / top[1] - c / top[0]) > 0.02]
    check("each bar's length on screen is its count's share of the longest (within 2%)", not off and top[1] > 100,
          f"{off} longest {top}")


def flame(tool, work, env):
    drawn = draw(tool, ["stacks", "RES"], "flame", work, env)
    if not drawn:
        return
    img, root = drawn
    total = sum(int(m) for m in re.findall(r"^\s+(\d+) hits on CPUs", open(f"{HERE}/fixtures/stacks_RES").read(), re.M))
    frames = {}
    for g in root.iter():
        kids = list(g)
        t = [k for k in kids if strip(k.tag) == "title"]
        rect = [k for k in kids if strip(k.tag) == "rect"]
        if t and rect:
            frames[t[0].text] = rect[0]
    root_frame = [k for k in frames if k.startswith(f"all ({total:,} hits")]
    check(f"the flame graph's root counts the file's {total:,} hits", root_frame, str(list(frames)[:5]))
    if not root_frame:
        return
    # The root bar spans the drawing on screen: its fill from 1% to 99% of the width along its row.
    e = frames[root_frame[0]]
    y = float(e.get("y")) + float(e.get("height")) / 2
    w = img.size[0]
    row = [img.getpixel((int(w * f / 100), int(y))) for f in range(2, 99, 4)]
    bg = img.getpixel((w // 2, 5))
    check("on screen the root bar spans the width", all(not near(px, bg, 10) for px in row), str(row[:6]))


def main():
    tool = os.path.abspath(sys.argv[1])
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="resched-browser-")
    os.makedirs(work, exist_ok=True)
    tree(f"{work}/tree")
    env = dict(os.environ, RESCHED_DIR=f"{work}/tree")
    if not os.access(CHROMIUM, os.X_OK):
        check(f"chromium is installed ({CHROMIUM})", False, "scripts/setup.sh installs it")
    else:
        for part in (heat_map, bars, flame):
            try:
                part(tool, work, env)
            except Exception as e:  # a part that cannot run is one failure, not a crash
                check(f"{part.__name__} ran", False, repr(e))
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


main()
