"""The HTML report (clients/html_report.py) and ``lepton-alloc report`` (clients/report_cli.py).

The page is checked as text (self-contained, escaped, every chart with its series names, the
summary) and, when chromium can be had, opened by a real headless chromium:

- the charts rendered: a probe script, added to a copy of the page, measures every chart's
  ``<svg>`` (laid-out size, drawn shapes, the rendered width of its text) and writes it into the
  DOM that ``--dump-dom`` prints; the expected series names must be among its texts;
- no network request: chromium runs with ``--log-net-log`` (and every host name mapped to
  NOTFOUND, so nothing could leave the machine anyway); the log must hold no URL request made
  for the page. Chromium's own background requests (component updates, time) are in the log
  too and are told apart by their network isolation key: a request made for a ``file://`` page
  carries ``file://`` there. A control page with one remote ``<img>`` proves the check sees a
  request when there is one. The dumped DOM's every ``src``/``href`` is inline (``#…``/``data:``);
- a screenshot (1280 × 2400) is written and is not blank. With ``LEPTON_REPORT_SCREENSHOT=PATH``
  it is also copied there (``docs/report_example.png`` is made that way).

Chromium comes from ``LEPTON_CHROMIUM`` (``make test`` sets it from ``.ci/ensure-chromium``;
empty = it could not be installed) or else from PATH; without it the browser test is skipped
with the reason.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lepton_alloc.clients.html_report import CHART_NAMES, carry_over, charts, render_html, summary, write_report
from lepton_alloc.clients.report_cli import register
from lepton_alloc.models import solve_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.result import Result, result_from_dict
from lepton_alloc.models.scenario import parse_scenario

SCENARIOS = ["bear", "base", "bull"]
MODES = ["build", "partner", "acquire", "not entered"]


@pytest.fixture(scope="module")
def example() -> Result:
    return solve_scenario(load_builtin_example())


@pytest.fixture(scope="module")
def example_html(example: Result) -> str:
    return render_html(example)


def _section(page: str, chart: str) -> str:
    m = re.search(rf'<section class="card chart-card" id="chart-{chart}">(.*?)</section>', page, re.S)
    assert m, f"no section for chart {chart}"
    return m.group(1)


def _svg_texts(fragment: str) -> list[str]:
    return [html.unescape(t).strip() for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", fragment)]


def _expected_series(r: Result) -> dict[str, list[str]]:
    regions = sorted({m.region or "no region" for m in r.markets if m.entered})
    entered = [m.name for m in r.markets if m.entered]
    return {"spend": regions + (["cumulative budget"] if carry_over(r) else ["budget"]),
            "headcount": regions + ["headcount cap"],
            "share_revenue": entered,
            "npv_scenarios": SCENARIOS + ["E[NPV]", "CVaR"],
            "decision_map": MODES}


def _has_series(texts: list[str], name: str) -> bool:
    return any(t == name or t.startswith(name + " ") or t.startswith(name) and name in ("E[NPV]", "CVaR") for t in texts)


# ----------------------------------------------------------------------------- the page as text


def test_the_example_report_is_self_contained(example_html: str) -> None:
    page = example_html
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<svg ') == len(CHART_NAMES) == 5
    assert not re.search(r"https?:|//[a-z]", page, re.I), "no URL of any kind (no CDN, font, namespace or metadata URL)"
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "@font-face"):
        assert tag not in page
    assert set(re.findall(r'(?:src|href)="(.)', page)) <= {"#"}
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids are unique across the inline SVGs"


def test_every_chart_shows_its_series_names_and_units(example: Result, example_html: str) -> None:
    assert carry_over(example), "the built-in example's budget carries over"
    for chart, names in _expected_series(example).items():
        texts = _svg_texts(_section(example_html, chart))
        missing = [n for n in names if not _has_series(texts, n)]
        assert not missing, f"{chart}: series {missing} not in the SVG's text"
    assert "spend (USD millions per year)" in _svg_texts(_section(example_html, "spend"))
    assert "heads (people)" in _svg_texts(_section(example_html, "headcount"))
    assert "NPV (USD millions)" in _svg_texts(_section(example_html, "npv_scenarios"))
    assert "expected revenue (USD millions per year)" in _svg_texts(_section(example_html, "share_revenue"))


def test_the_page_is_the_same_every_time(example: Result) -> None:
    assert render_html(example) == render_html(result_from_dict(json.loads(example.to_json())))


def test_the_summary_says_what_how_when_cost_return_and_binds(example: Result, example_html: str) -> None:
    s = summary(example)
    text = " ".join(s.paragraphs)
    k = example.kpis
    assert k is not None
    for m in example.markets:
        if m.entered:
            assert f"{m.name} ({m.mode})" in text and str(m.entry_year) in text
        else:
            assert m.name in text.split("Not entered:")[1]
    total = sum(y.spend for y in example.years)
    assert f"USD {total:,.1f} million" in text and f"USD {k.expected_npv:,.1f} million" in text
    assert f"pays back in {k.payback_year}" in text
    objective = next(p for p in s.paragraphs if p.startswith("Objective"))
    assert sum(t.contribution for t in example.objective_terms) == pytest.approx(example.objective_value, rel=1e-9)
    assert objective.startswith(f"Objective {example.objective_value:,.1f} = 0.7 × E[NPV]") and "CVaR" in objective
    binding = [lim for lim in example.limits if lim.binds]
    assert [b[0] for b in s.binding] == [lim.constraint for lim in binding]
    assert "the cumulative budget to 2030" in text and "local value +0.525" in example_html
    for lim in binding:
        assert f"<code>{lim.constraint}</code>" in example_html
    assert example_html.index("Enter 16 of 20 markets") < example_html.index("<svg "), "the summary comes first"


def test_without_carry_over_the_spend_chart_has_the_yearly_budget_only(example: Result) -> None:
    d = json.loads(example.to_json())
    for lim in d["limits"]:
        lim["constraint"] = lim["constraint"].replace("budget_cumulative[", "budget[")
    r = result_from_dict(d)
    assert not carry_over(r)
    texts = _svg_texts(_section(render_html(r), "spend"))
    assert "budget" in texts and "cumulative budget" not in texts and "Cumulative spend vs cumulative budget" not in texts


def test_a_large_plan_folds_the_markets_not_entered_and_draws_the_top_markets(example: Result) -> None:
    d = json.loads(example.to_json())
    idle = next(m for m in d["markets"] if not m["entered"])
    d["markets"] += [{**copy.deepcopy(idle), "id": f"X{i}", "name": f"Extra {i}"} for i in range(40)]
    entered = [m for m in d["markets"] if m["entered"]]
    d["markets"] += [{**copy.deepcopy(entered[0]), "id": f"E{i}", "name": f"Entered {i}", "expected_npv": -1.0 - i} for i in range(6)]
    page = render_html(d)
    assert "44 markets not entered" in _svg_texts(_section(page, "decision_map"))
    assert "Extra 3" not in _svg_texts(_section(page, "decision_map"))
    share = _section(page, "share_revenue")
    assert "The 20 markets of highest E[NPV] of the 22 entered are shown." in share
    assert "Entered 5" not in _svg_texts(share) and "United States" in _svg_texts(share)


def test_user_text_is_escaped_in_the_page_and_in_the_charts(example: Result) -> None:
    d = json.loads(example.to_json())
    evil = '<script>alert("x")</script> & $Co$'
    d["markets"][0]["name"] = evil
    d["scenario_name"] = "<b>plan</b>"
    page = render_html(d)
    assert "<script" not in page and "<b>plan" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;plan&lt;/b&gt;" in page
    assert any(evil in t for t in _svg_texts(_section(page, "share_revenue"))), "the name is drawn as text, $ not as math"


def test_an_infeasible_result_explains_why_instead_of_charts() -> None:
    market = lambda i, must: {"id": i, "must_enter": must, "latest_entry_year": 2027,  # noqa: E731
                              "options": [{"mode": "build", "cash_flows": {"contribution": [0, 50, 50], "cost": [70]}}]}
    sc = parse_scenario({"name": "too-tight", "start_year": 2027, "horizon_years": 3, "budget": {"limit": 100},
                         "markets": [market("A", True), market("B", True), market("C", False)]})
    r = solve_scenario(sc)
    assert str(r.status) == "infeasible" and r.infeasibility is not None
    assert charts(r) == []
    page = render_html(r)
    assert "<svg" not in page
    assert "No plan satisfies every limit" in page and "Why it is infeasible" in page
    for line in r.infeasibility.explanation:
        assert html.escape(line) in page
    relax = r.infeasibility.relaxations
    assert relax and f"<code>{relax[0].constraint}</code>" in page and f"{relax[0].needed:,.1f}" in page
    assert "It becomes feasible if" in " ".join(summary(r).paragraphs)


def test_png_charts_for_slides(example: Result, tmp_path: Path) -> None:
    written = write_report(example, tmp_path / "r.html", png_dir=tmp_path / "png")
    assert [p.name for p in written] == ["r.html"] + [f"{n}.png" for n in CHART_NAMES]
    for p in written[1:]:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_importing_the_report_module_loads_no_matplotlib_or_jinja2() -> None:
    code = ("import sys, lepton_alloc.clients.html_report, lepton_alloc.clients.report_cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'jinja2', 'pyomo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the command


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lepton-alloc")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.func(args))


def test_report_command_writes_the_page_and_pngs(example: Result, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "result.json"
    src.write_text(example.to_json())
    assert _cli(["report", str(src), "-o", str(tmp_path / "out" / "report.html"), "--png-dir", str(tmp_path / "png")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg ") == 5 and "global-expansion-2027" in page
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{n}.png" for n in CHART_NAMES)
    assert "wrote" in capsys.readouterr().err


def test_report_command_rejects_what_is_not_a_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert _cli(["report", str(tmp_path / "bad.json"), "-o", str(tmp_path / "a.html")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert _cli(["report", str(tmp_path / "other.json"), "-o", str(tmp_path / "a.html")]) == 2
    assert "not a result" in capsys.readouterr().err
    assert _cli(["report", str(tmp_path / "missing.json")]) == 2
    assert not (tmp_path / "a.html").exists()


# ----------------------------------------------------------------------------- a real browser

PROBE = """<script>
(() => {
  const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")];
    return {section: svg.closest("section").id, width: box.width, height: box.height,
            shapes: svg.querySelectorAll("path, rect, use, line, polyline, polygon").length,
            text_width: texts.reduce((sum, t) => sum + t.getComputedTextLength(), 0),
            texts: texts.map(t => t.textContent.trim())};
  });
  const out = document.createElement("pre");
  out.id = "lepton-probe";
  out.textContent = JSON.stringify(charts);
  document.body.appendChild(out);
})();
</script>"""


def _chromium() -> str:
    env = os.environ.get("LEPTON_CHROMIUM")
    if env is not None:
        if not env:
            pytest.skip("LEPTON_CHROMIUM is empty: .ci/ensure-chromium could not provide a headless chromium (its reason is in "
                        "the test command's output)")
        return env
    for name in ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium: LEPTON_CHROMIUM is unset and none is on PATH (run .ci/ensure-chromium; make test does)")


def _browse(exe: str, tmp: Path, page: Path, *extra: str) -> tuple[str, list[dict[str, Any]]]:
    """Open ``page`` headless; its stdout and the URL requests in the net log that were made for a file:// page."""
    netlog = tmp / f"{page.stem}.netlog.json"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
           f"--user-data-dir={tmp / ('profile-' + page.stem)}", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--log-net-log={netlog}", "--net-log-capture-mode=Default", *extra, page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, _page_requests(netlog)


def _page_requests(netlog: Path) -> list[dict[str, Any]]:
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit: close its event list
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    out = []
    for ev in log.get("events", []):
        p = ev.get("params") or {}
        if kinds.get(ev["type"]) == "URL_REQUEST_START_JOB" and (
                "file://" in str(p.get("network_isolation_key", "")) or "file://" in str(p.get("site_for_cookies", ""))):
            out.append({"url": p.get("url"), "initiator": p.get("initiator")})
    return out


def test_a_headless_browser_renders_the_report_offline(example: Result, example_html: str, tmp_path: Path) -> None:
    exe = _chromium()
    report = tmp_path / "report.html"
    report.write_text(example_html, encoding="utf-8")

    # the net log sees a page's request: a control page with one remote image
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>control</p><img src="http://lepton-control.invalid/x.png">')
    _, control_requests = _browse(exe, tmp_path, control, "--dump-dom")
    assert [r["url"] for r in control_requests] == ["http://lepton-control.invalid/x.png"]

    # the charts rendered, with their series names; every src/href in the DOM is inline
    probed = tmp_path / "probed.html"
    probed.write_text(example_html.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    dom, requests = _browse(exe, tmp_path, probed, "--dump-dom", "--window-size=1280,2400")
    assert requests == [], f"the page made network requests: {requests}"
    m = re.search(r'<pre id="lepton-probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run: " + dom[-500:]
    rendered = {c["section"]: c for c in json.loads(html.unescape(m.group(1)))}
    assert sorted(rendered) == sorted(f"chart-{n}" for n in CHART_NAMES)
    for chart, names in _expected_series(example).items():
        c = rendered[f"chart-{chart}"]
        assert c["width"] > 600 and c["height"] > 200, f"{chart} laid out at {c['width']} x {c['height']}"
        assert c["shapes"] > 10 and c["text_width"] > 100, f"{chart} drew nothing: {c}"
        missing = [n for n in names if not _has_series(c["texts"], n)]
        assert not missing, f"{chart}: series {missing} not rendered"
    dom_without_probe = dom.replace(m.group(0), "")
    assert dom_without_probe.count("<script") == 1  # the probe's own, inline
    refs = re.findall(r'\s(?:src|href|xlink:href)="([^"]*)"', dom_without_probe)
    assert refs and all(v.startswith(("#", "data:")) for v in refs), sorted(set(refs))[:5]

    # the screenshot of the report itself (no probe), also offline
    shot = tmp_path / "report.png"
    _, requests = _browse(exe, tmp_path, report, f"--screenshot={shot}", "--window-size=1280,2400")
    assert requests == [], f"the page made network requests: {requests}"
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[:2] == (2400, 1280)
    assert float(pixels.std()) > 0.05, "the screenshot is blank"
    if os.environ.get("LEPTON_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["LEPTON_REPORT_SCREENSHOT"])


def test_the_scenario_fixture_is_not_changed_by_rendering(example: Result) -> None:
    before = copy.deepcopy(example.to_dict())
    render_html(example)
    assert example.to_dict() == before
