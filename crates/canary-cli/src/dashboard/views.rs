//! The dashboard's HTML: the page ([`page`]), the part the page replaces on a live
//! update ([`board_fragment`]), a deployment's timeline as inline SVG
//! ([`timeline_svg`]) and the self-contained report ([`report_page`]).
//!
//! Plain formatting, with every value that comes from a record, a deploy.json or a
//! person (service names, images, reasons, who) passed through [`esc`]; the markup
//! around them is this file's own. The style sheet and the script are compiled in
//! (`assets/`), so the page makes no request anywhere but to the dashboard itself, and
//! the report none at all.

use std::fmt::Write as _;

use canary_core::{Verdict, VerdictStatus};

use super::model::{Board, DeploymentView, GroupView, ServiceView};
use crate::format::{num, time_of_day, utc, verdict_numbers};
use crate::progress::Row;

/// The style sheet of the page and the report.
pub const CSS: &str = include_str!("assets/dashboard.css");
/// The page's script: polls `api/board` every 2 s, swaps the board when it changed,
/// and sends the buttons' actions after a confirmation.
pub const JS: &str = include_str!("assets/dashboard.js");

/// `text` safe inside HTML text and attribute values (double- or single-quoted).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A word for an outcome: `promoted`, `rolled back`.
pub fn outcome_text(outcome: &str) -> String {
    outcome.replace('_', " ")
}

fn verdict_class(v: &Verdict) -> &'static str {
    match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "unhealthy",
        VerdictStatus::Hold => "hold",
    }
}

/// An id made of letters, digits and `-` only.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The whole page: the board, the style and the live script.
pub fn page(board: &Board, fingerprint: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{title}</title><style>{CSS}</style></head>\
         <body data-live=\"1\" data-fingerprint=\"{fp}\" data-read-only=\"{ro}\">\
         <header><h1>{title}</h1><span id=\"live\" class=\"live\">connecting</span>\
         <span id=\"updated\">read at {at} UTC</span>{badge}</header>\
         <p id=\"message\" class=\"message\" role=\"status\"></p>\
         <main id=\"board\">{fragment}</main><script>{JS}</script></body></html>\n",
        title = esc(&board.title),
        fp = esc(fingerprint),
        ro = board.read_only,
        at = utc(board.read_at),
        badge = if board.read_only {
            "<span class=\"badge\">read-only</span>"
        } else {
            ""
        },
        fragment = board_fragment(board),
    );
    out
}

/// Every group and its services: what the page shows and replaces on an update.
pub fn board_fragment(board: &Board) -> String {
    let mut out = String::new();
    if board
        .groups
        .iter()
        .all(|g| g.services.is_empty() && g.error.is_none())
    {
        out.push_str("<p class=\"empty\">No services yet: nothing under this prefix has a state.json. A deployment's first task writes one.</p>");
    }
    for g in &board.groups {
        group(&mut out, g, board);
    }
    out
}

fn group(out: &mut String, g: &GroupView, board: &Board) {
    let _ = write!(
        out,
        "<section class=\"group\" id=\"group-{i}\" data-group=\"{i}\"><h2>{label}</h2>",
        i = g.index,
        label = esc(&g.label)
    );
    if let Some(note) = &g.note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(note));
    }
    if let Some(e) = &g.error {
        let _ = write!(out, "<p class=\"error\">{}</p>", esc(e));
    }
    for s in &g.services {
        service(out, g.index, s, board);
    }
    out.push_str("</section>");
}

fn service(out: &mut String, group: usize, s: &ServiceView, board: &Board) {
    let id = format!("svc-{group}-{}", slug(&s.service));
    let _ = write!(
        out,
        "<article class=\"service\" id=\"{id}\" data-service=\"{svc}\"><h3>{svc}</h3><dl class=\"facts\">",
        svc = esc(&s.service)
    );
    let stable = match (s.stable_version, &s.stable_image) {
        (Some(v), Some(img)) => format!("v{v} <code>{}</code>", esc(img)),
        (Some(v), None) => format!("v{v}"),
        _ => "none (never promoted)".to_owned(),
    };
    fact(out, "stable", &stable, "");
    match &s.running {
        Some(d) => {
            let mut text = format!(
                "v{} <code>{}</code> at {}%",
                d.version,
                esc(&d.image),
                d.weight
            );
            if let Some((step, steps)) = d.step {
                let _ = write!(text, ", step {step} of {steps}");
            }
            let _ = write!(text, ", started {} UTC", utc(d.started_at));
            fact(out, "running", &text, "running");
            let next = match d.next_check {
                Some(t) => format!("{} UTC", utc(t)),
                None => "not known from the record (pass --state-machine for it)".to_owned(),
            };
            fact(out, "next check", &next, "");
            match d.last_verdict() {
                Some(v) => fact(
                    out,
                    "last verdict",
                    &format!(
                        "{}<br><span class=\"reason\">{}</span>",
                        esc(&verdict_numbers(v)),
                        esc(&v.reason)
                    ),
                    verdict_class(v),
                ),
                None => fact(out, "last verdict", "no health check yet", ""),
            }
            match &d.gate {
                Some(gate) => fact(out, "gate", &esc(&gate.sentence()), "gate"),
                None => fact(out, "gate", "none waiting", ""),
            }
        }
        None => fact(out, "running", "no deployment", ""),
    }
    match &s.lock {
        Some(l) => fact(
            out,
            "lock",
            &format!(
                "held by <code>{}</code> since {} UTC",
                esc(&l.execution),
                utc(l.since)
            ),
            "",
        ),
        None => fact(out, "lock", "free", ""),
    }
    if let Some(a) = &s.abort {
        fact(
            out,
            "abort",
            &format!(
                "requested by {} at {} UTC: {}",
                esc(&a.by),
                utc(a.at),
                esc(&a.reason)
            ),
            "unhealthy",
        );
    }
    out.push_str("</dl>");
    if let Some(d) = &s.running
        && !board.read_only
    {
        buttons(out, group, s, d);
    }
    for (i, d) in s.history.iter().take(MAX_TIMELINES).enumerate() {
        let open = if i == 0 { " open" } else { "" };
        let status = match &d.outcome {
            Some(o) => outcome_text(o),
            None => "running".to_owned(),
        };
        let _ = write!(
            out,
            "<details class=\"deployment\" id=\"{id}-v{v}\"{open}><summary>v{v} <span class=\"outcome {cls}\">{status}</span> <span class=\"when\">{start} UTC</span></summary>",
            v = d.version,
            cls = slug(&status),
            start = utc(d.started_at),
        );
        deployment(out, d, board.read_at);
        out.push_str("</details>");
    }
    if !s.history.is_empty() {
        history_table(out, s);
    }
    out.push_str("</article>");
}

/// Deployments shown with their timeline (the newest); the history table lists all.
const MAX_TIMELINES: usize = 10;

fn fact(out: &mut String, name: &str, html: &str, class: &str) {
    let _ = write!(out, "<dt>{name}</dt><dd class=\"{class}\">{html}</dd>");
}

fn buttons(out: &mut String, group: usize, s: &ServiceView, d: &DeploymentView) {
    out.push_str("<div class=\"actions\">");
    let mut button = |action: &str, label: &str, what: &str| {
        let _ = write!(
            out,
            "<button type=\"button\" class=\"act {action}\" data-action=\"{action}\" data-group=\"{group}\" data-service=\"{svc}\" data-what=\"{what}\">{label}</button>",
            svc = esc(&s.service),
            what = esc(what),
        );
    };
    if let Some(g) = &d.gate {
        button(
            "approve",
            "Approve",
            &format!("pass the gate at {} of v{}", g.label, d.version),
        );
    }
    button(
        "promote",
        "Promote",
        &format!(
            "skip v{}'s remaining pauses (the next passing check goes on)",
            d.version
        ),
    );
    button(
        "promote-full",
        "Promote to 100%",
        &format!("send v{} to 100% at the next passing check", d.version),
    );
    button(
        "abort",
        "Abort",
        &format!("roll v{} back at its next step", d.version),
    );
    out.push_str("</div>");
}

/// One deployment: its facts, its timeline and its events.
pub fn deployment(out: &mut String, d: &DeploymentView, now: i64) {
    let _ = write!(
        out,
        "<p class=\"dep\">v{v} <code>{img}</code>{prev}, execution <code>{exec}</code>, highest weight {max}%",
        v = d.version,
        img = esc(&d.image),
        prev = d
            .previous_version
            .map(|p| format!(" beside stable v{p}"))
            .unwrap_or_default(),
        exec = esc(&d.execution),
        max = d.max_weight,
    );
    if let (Some(o), Some(r)) = (&d.outcome, &d.reason) {
        let _ = write!(
            out,
            "; <strong class=\"outcome {cls}\">{word}</strong> at {at} UTC: <span class=\"reason\">{r}</span>",
            cls = slug(&outcome_text(o)),
            word = outcome_text(o),
            at = d.ended_at.map(utc).unwrap_or_default(),
            r = esc(r)
        );
    }
    out.push_str("</p>");
    out.push_str(&timeline_svg(d, now));
    if !d.exact_times {
        out.push_str("<p class=\"note\">The record keeps the verdicts, not their times: the checks are spread evenly between the start and the end (pass --state-machine for the exact times).</p>");
    }
    events_table(out, &d.timeline);
}

fn events_table(out: &mut String, rows: &[Row]) {
    out.push_str("<table class=\"events\"><thead><tr><th>time (UTC)</th><th>state</th><th>weight</th><th>what happened</th></tr></thead><tbody>");
    for r in rows {
        let class = match &r.verdict {
            Some(v) => verdict_class(v),
            None if r.bad => "unhealthy",
            None => "",
        };
        let what = match &r.verdict {
            Some(v) if !r.note.contains(&v.reason) => format!(
                "{}<br><span class=\"reason\">{}</span>",
                esc(&verdict_numbers(v)),
                esc(&v.reason)
            ),
            Some(v) => esc(&format!("{} — {}", verdict_numbers(v), v.reason)),
            None => esc(&r.note),
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{t}</td><td>{s}</td><td>{w}%</td><td>{what}</td></tr>",
            t = time_of_day(r.at_millis.div_euclid(1000)),
            s = esc(&r.state),
            w = r.weight,
        );
    }
    out.push_str("</tbody></table>");
}

fn history_table(out: &mut String, s: &ServiceView) {
    out.push_str("<table class=\"history\"><caption>History</caption><thead><tr><th>version</th><th>started (UTC)</th><th>ended (UTC)</th><th>outcome</th><th>highest weight</th><th>reason</th></tr></thead><tbody>");
    for d in &s.history {
        let (word, cls) = match &d.outcome {
            Some(o) => (outcome_text(o), slug(&outcome_text(o))),
            None => ("running".to_owned(), "running".to_owned()),
        };
        let _ = write!(
            out,
            "<tr><td>v{v}</td><td>{start}</td><td>{end}</td><td class=\"outcome {cls}\">{word}</td><td>{max}%</td><td>{reason}</td></tr>",
            v = d.version,
            start = utc(d.started_at),
            end = d.ended_at.map(utc).unwrap_or_default(),
            max = d.max_weight,
            reason = esc(d.reason.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>");
}

/// Chart geometry.
const W: f64 = 760.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 18.0;
const WEIGHT_H: f64 = 120.0;
const BARS_TOP: f64 = 168.0;
const BARS_H: f64 = 64.0;
const H: f64 = 262.0;

/// A deployment's timeline as inline SVG: the canary's weight as a step line, each
/// health check's requests and errors for the canary and the stable version as bars,
/// each verdict, decision, gate and operator action marked, with its sentence as the
/// mark's `<title>` (a tooltip).
pub fn timeline_svg(d: &DeploymentView, now: i64) -> String {
    let rows = &d.timeline;
    let mut out = String::new();
    let t0 = rows
        .iter()
        .map(|r| r.at_millis)
        .min()
        .unwrap_or(d.started_at * 1000)
        .min(d.started_at * 1000);
    let mut t1 = rows.iter().map(|r| r.at_millis).max().unwrap_or(t0);
    if d.running() {
        t1 = t1.max(now * 1000);
    }
    if t1 <= t0 {
        t1 = t0 + 1000;
    }
    let plot_w = W - LEFT - RIGHT;
    let x = |ms: i64| LEFT + plot_w * ((ms - t0) as f64) / ((t1 - t0) as f64);
    let y = |w: u8| TOP + WEIGHT_H * (1.0 - f64::from(w) / 100.0);
    let _ = write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>v{v}: weight over time, checks and decisions</title>",
        v = d.version
    );
    // Axes and grid.
    for w in [0_u8, 25, 50, 75, 100] {
        let yy = y(w);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"axis\" x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{w}%</text>",
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = yy + 4.0
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{LEFT}\" y=\"{ty}\">{a}</text><text class=\"axis\" x=\"{x2}\" y=\"{ty}\" text-anchor=\"end\">{b}</text>",
        ty = TOP + WEIGHT_H + 16.0,
        x2 = W - RIGHT,
        a = time_of_day(t0.div_euclid(1000)),
        b = time_of_day(t1.div_euclid(1000)),
    );
    // The gate's wait.
    if let Some(g) = &d.gate {
        let gx = x(g.since * 1000);
        let end = (g.deadline * 1000).min(t1);
        let _ = write!(
            out,
            "<rect class=\"gate\" x=\"{gx:.1}\" y=\"{TOP}\" width=\"{gw:.1}\" height=\"{WEIGHT_H}\"><title>{t}</title></rect>",
            gw = (x(end) - gx).max(2.0),
            t = esc(&g.sentence()),
        );
    }
    // The weight as a step line.
    let mut path = String::new();
    let mut last_w = 0_u8;
    let _ = write!(path, "M{:.1} {:.1}", x(t0), y(0));
    for r in rows
        .iter()
        .filter(|r| !matches!(r.state.as_str(), "Gate" | "Operator"))
    {
        let _ = write!(path, " H{:.1} V{:.1}", x(r.at_millis), y(r.weight));
        last_w = r.weight;
    }
    let _ = write!(path, " H{:.1}", x(t1));
    let _ = write!(
        out,
        "<path class=\"weight\" d=\"{path}\"><title>{t}</title></path>",
        t = esc(&format!("canary weight; now {last_w}%"))
    );
    // Requests and errors per check, canary and stable.
    let checks: Vec<(&Row, &Verdict)> = rows
        .iter()
        .filter_map(|r| r.verdict.as_ref().map(|v| (r, v)))
        .collect();
    let max_requests = checks
        .iter()
        .flat_map(|(_, v)| {
            [
                v.requests.unwrap_or(v.errors),
                v.stable.as_ref().map_or(0.0, |s| s.requests),
            ]
        })
        .fold(0.0_f64, f64::max);
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">req.</text><line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yb}\" y2=\"{yb}\"/>",
        tx = LEFT - 6.0,
        ty = BARS_TOP + 10.0,
        x2 = W - RIGHT,
        yb = BARS_TOP + BARS_H,
    );
    let bar_h = |n: f64| {
        if max_requests > 0.0 {
            BARS_H * n / max_requests
        } else {
            0.0
        }
    };
    for (r, v) in &checks {
        let cx = x(r.at_millis);
        let canary_req = v.requests.unwrap_or(v.errors);
        let base = BARS_TOP + BARS_H;
        let title = esc(&format!(
            "{} UTC, canary{}: {}",
            time_of_day(r.at_millis.div_euclid(1000)),
            v.version.map(|n| format!(" v{n}")).unwrap_or_default(),
            verdict_numbers(v)
        ));
        let (h, e) = (bar_h(canary_req), bar_h(v.errors));
        let _ = write!(
            out,
            "<g class=\"bar canary\"><title>{title}</title><rect class=\"req\" x=\"{bx:.1}\" y=\"{by:.1}\" width=\"5\" height=\"{h:.1}\"/><rect class=\"err\" x=\"{bx:.1}\" y=\"{ey:.1}\" width=\"5\" height=\"{e:.1}\"/></g>",
            bx = cx - 5.5,
            by = base - h,
            ey = base - e,
        );
        if let Some(s) = &v.stable {
            let title = esc(&format!(
                "{} UTC, stable: {} errors, {} requests",
                time_of_day(r.at_millis.div_euclid(1000)),
                num(s.errors),
                num(s.requests)
            ));
            let (h, e) = (bar_h(s.requests), bar_h(s.errors));
            let _ = write!(
                out,
                "<g class=\"bar stable\"><title>{title}</title><rect class=\"req\" x=\"{bx:.1}\" y=\"{by:.1}\" width=\"5\" height=\"{h:.1}\"/><rect class=\"err\" x=\"{bx:.1}\" y=\"{ey:.1}\" width=\"5\" height=\"{e:.1}\"/></g>",
                bx = cx + 0.5,
                by = base - h,
                ey = base - e,
            );
        }
    }
    // Marks: verdicts, failures, gates, operators, the end.
    for r in rows {
        let rx = x(r.at_millis);
        let when = time_of_day(r.at_millis.div_euclid(1000));
        match (&r.verdict, r.state.as_str()) {
            (Some(v), _) => {
                let _ = write!(
                    out,
                    "<circle class=\"mark verdict {cls}\" cx=\"{rx:.1}\" cy=\"{cy:.1}\" r=\"5\"><title>{t}</title></circle>",
                    cls = verdict_class(v),
                    cy = y(r.weight),
                    t = esc(&format!(
                        "{when} UTC: {} — {}",
                        verdict_numbers(v),
                        v.reason
                    )),
                );
            }
            (None, "Ended") => {
                let cls = if r.bad { "rolled-back" } else { "promoted" };
                let word = if r.bad { "rolled back" } else { "promoted" };
                let _ = write!(
                    out,
                    "<g class=\"mark decision {cls}\"><title>{t}</title><line x1=\"{rx:.1}\" x2=\"{rx:.1}\" y1=\"{TOP}\" y2=\"{yb}\"/><text x=\"{tx:.1}\" y=\"{ty}\" text-anchor=\"end\">{word}</text></g>",
                    t = esc(&format!("{when} UTC: {word}: {}", r.note)),
                    yb = BARS_TOP + BARS_H,
                    tx = rx - 4.0,
                    ty = TOP + 12.0,
                );
            }
            (None, "Gate" | "Operator") => {
                let _ = write!(
                    out,
                    "<path class=\"mark operator\" d=\"M{a:.1} {top} L{b:.1} {top} L{rx:.1} {tip} Z\"><title>{t}</title></path>",
                    a = rx - 6.0,
                    b = rx + 6.0,
                    top = TOP - 12.0,
                    tip = TOP - 2.0,
                    t = esc(&format!("{when} UTC: {}", r.note)),
                );
            }
            (None, _) if r.bad => {
                let _ = write!(
                    out,
                    "<g class=\"mark failure\"><title>{t}</title><line x1=\"{a:.1}\" x2=\"{b:.1}\" y1=\"{c:.1}\" y2=\"{e:.1}\"/><line x1=\"{a:.1}\" x2=\"{b:.1}\" y1=\"{e:.1}\" y2=\"{c:.1}\"/></g>",
                    t = esc(&format!("{when} UTC: {}: {}", r.state, r.note)),
                    a = rx - 4.0,
                    b = rx + 4.0,
                    c = y(r.weight) - 4.0,
                    e = y(r.weight) + 4.0,
                );
            }
            (None, _) => {}
        }
    }
    out.push_str("</svg>");
    let _ = write!(
        out,
        "<p class=\"legend\"><span class=\"key weight\">weight</span> <span class=\"key canary\">canary requests</span> <span class=\"key stable\">stable requests</span> <span class=\"key err\">errors</span> <span class=\"key healthy\">healthy</span> <span class=\"key hold\">hold</span> <span class=\"key unhealthy\">unhealthy</span></p>"
    );
    out
}

/// One deployment as a self-contained HTML file: the style inline, no script, no
/// request anywhere.
pub fn report_page(service: &str, d: &DeploymentView, now: i64) -> String {
    let mut body = String::new();
    deployment(&mut body, d, now);
    let title = format!("{service} v{}", d.version);
    let status = match &d.outcome {
        Some(o) => outcome_text(o),
        None => format!("running at {}%", d.weight),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{t}</title><style>{CSS}</style></head>\
         <body class=\"report\"><header><h1>{t}</h1><span class=\"outcome {cls}\">{st}</span><span>report written {at} UTC by canary report</span></header>\
         <main><article class=\"service\" data-service=\"{svc}\">{body}</article></main></body></html>\n",
        t = esc(&title),
        cls = slug(&status),
        st = esc(&status),
        at = utc(now),
        svc = esc(service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
