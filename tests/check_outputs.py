#!/usr/bin/env python3
"""Reads docsweep's report outputs with the tools their consumers use, and prints what
those tools saw as JSON on stdout, for tests/integration/outputs.rs to assert on.

    check_outputs.py junit   --xsd junit-10.xsd FILE   # lxml XML Schema validation
    check_outputs.py metrics FILE                      # prometheus_client's parser
    check_outputs.py html    FILE [--screenshot PNG] [--width W] [--height H]
                                                       # headless Chromium (--dump-dom)

Exit 0: the file passed and the JSON is on stdout. Exit 1: the file is wrong (why on
stderr). Exit 2: a tool is missing (run scripts/setup-test-tools).
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

SETUP = "run scripts/setup-test-tools (it installs python3 lxml + prometheus-client and Debian's chromium)"


def missing(what):
    print(f"check_outputs.py: {what} is not available: {SETUP}", file=sys.stderr)
    sys.exit(2)


def fail(msg):
    print(f"check_outputs.py: {msg}", file=sys.stderr)
    sys.exit(1)


def junit(args):
    try:
        from lxml import etree
    except ImportError:
        missing("the Python package lxml")
    if not os.path.isfile(args.xsd):
        missing(f"the JUnit schema {args.xsd}")
    schema = etree.XMLSchema(etree.parse(args.xsd))
    try:
        doc = etree.parse(args.file)
    except etree.XMLSyntaxError as e:
        fail(f"{args.file} is not well-formed XML: {e}")
    if not schema.validate(doc):
        fail(f"{args.file} does not validate against {args.xsd}:\n{schema.error_log}")
    root = doc.getroot()
    out = {"root": root.tag, "attrs": dict(root.attrib), "suites": []}
    for s in root.iter("testsuite"):
        suite = {"attrs": dict(s.attrib), "properties": {}, "cases": [],
                 "system_out": s.findtext("system-out"), "system_err": s.findtext("system-err")}
        for p in s.iter("property"):
            suite["properties"][p.get("name")] = p.get("value")
        for c in s.findall("testcase"):
            case = {"name": c.get("name"), "classname": c.get("classname"), "status": "passed"}
            for kind in ("failure", "error", "skipped"):
                el = c.find(kind)
                if el is not None:
                    case["status"] = kind
                    case["message"] = el.get("message")
                    case["text"] = el.text or ""
            case["system_out"] = c.findtext("system-out")
            suite["cases"].append(case)
        out["suites"].append(suite)
    print(json.dumps(out))


def metrics(args):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        missing("the Python package prometheus-client")
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    if not text.endswith("\n"):
        fail("the file does not end with a newline")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends
        fail(f"prometheus_client cannot parse {args.file}: {e!r}")
    out = {}
    seen = set()
    for fam in families:
        if fam.name in out:
            fail(f"metric family {fam.name} appears twice (its samples must be contiguous)")
        if fam.type == "unknown" or not fam.documentation:
            fail(f"metric family {fam.name} lacks # HELP or # TYPE")
        samples = []
        for s in fam.samples:
            if s.timestamp is not None:
                fail(f"{s.name} has a timestamp (the textfile collector refuses them)")
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                fail(f"duplicate series {key}")
            seen.add(key)
            value = s.value if math.isfinite(s.value) else str(s.value)  # JSON has no NaN
            samples.append({"name": s.name, "labels": s.labels, "value": value})
        out[fam.name] = {"type": fam.type, "help": fam.documentation, "samples": samples}
    # Every sample line must have been understood (nothing silently skipped).
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    if len(lines) != sum(len(f["samples"]) for f in out.values()):
        fail("the parser saw fewer samples than the file has lines")
    print(json.dumps(out))


def chromium():
    for name in (os.environ.get("DOCSWEEP_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome-stable", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    missing("chromium (Debian package chromium)")


def run_chromium(exe, profile, extra, url):
    cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, url]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        fail("chromium did not finish within 120 s")
    for line in p.stderr.splitlines():
        if "Uncaught" in line or ("CONSOLE" in line and ":ERROR:" in line):
            fail(f"the page logged an error in chromium: {line}")
    if p.returncode != 0:
        fail(f"chromium exited with {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def html(args):
    try:
        import lxml.html
    except ImportError:
        missing("the Python package lxml")
    exe = chromium()
    path = os.path.abspath(args.file)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    # Self-contained: nothing that would load from elsewhere.
    page = lxml.html.fromstring(source)
    for el in page.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ("src", "href", "srcset", "data", "action", "poster"):
            v = el.get(attr)
            if v is not None and not v.startswith("#") and not v.startswith("data:"):
                fail(f"<{el.tag} {attr}={v!r}> refers to something outside the page")
        if el.tag in ("link", "iframe", "object", "embed", "img") or (el.tag == "script" and el.get("src")):
            fail(f"<{el.tag}> loads an external resource")
    for style in page.iter("style"):
        if re.search(r"@import|url\(|@font-face", style.text or ""):
            fail("the inline CSS loads something (@import, url() or @font-face)")

    with tempfile.TemporaryDirectory() as profile:
        p = run_chromium(exe, profile, ["--dump-dom"], "file://" + path)
        dom = p.stdout
        if args.screenshot:
            shot = os.path.abspath(args.screenshot)
            run_chromium(exe, profile, [f"--screenshot={shot}",
                                        f"--window-size={args.width},{args.height}"],
                         "file://" + path)
            if not os.path.isfile(shot) or os.path.getsize(shot) == 0:
                fail("chromium wrote no screenshot")
    if "<body" not in dom:
        fail("chromium rendered no body")
    doc = lxml.html.fromstring(dom)
    out = {"title": doc.findtext(".//title"), "run": {}, "collections": {},
           "text": doc.body.text_content()}
    for el in doc.iter():
        if not isinstance(el.tag, str) or el.get("data-testid") is None:
            continue
        value = el.get("data-value")
        if value is None:
            value = el.text_content().strip()
        section = next((a for a in el.iterancestors("section") if a.get("data-collection") is not None), None)
        if section is None:
            out["run"].setdefault(el.get("data-testid"), []).append(value)
        else:
            coll = out["collections"].setdefault(section.get("data-collection"), {})
            coll.setdefault(el.get("data-testid"), []).append(value)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("junit")
    j.add_argument("--xsd", required=True)
    j.add_argument("file")
    m = sub.add_parser("metrics")
    m.add_argument("file")
    h = sub.add_parser("html")
    h.add_argument("file")
    h.add_argument("--screenshot")
    h.add_argument("--width", type=int, default=1280)
    h.add_argument("--height", type=int, default=1800)
    args = ap.parse_args()
    {"junit": junit, "metrics": metrics, "html": html}[args.cmd](args)


if __name__ == "__main__":
    main()
