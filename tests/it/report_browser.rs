//! The static `dry-run --format html` report in a real browser (headless Chromium through
//! chromedriver), with what a reader tripped over: 10,000-character values (a partner's name
//! and address, a claim id, a hold's reason) must not make any element wider than the window;
//! every instant stays on one line; the UTC deadline shows whole in the table; rows later in the
//! horizon do not say `fired`; clicking a header sorts the rows. A screenshot goes to
//! `target/report-screenshots/report.png`. Skipped when chromedriver or chromium is missing.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::Store;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::cli_report::{AT, prepared};
use crate::console_browser::{browser, driver};

/// A rejected claim (its rejection notice due at `AT`) with long values where they show.
fn long_claim(id: &str, long: &str, email: &str) -> ClaimRow {
    let at: DateTime<Utc> = AT.parse().unwrap();
    ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_id: Some("P-LONG".into()),
        partner_name: Some(long.into()),
        partner_email: Some(email.into()),
        customer_name: Some(long.into()),
        customer_email: Some("it@akerlund.example".into()),
        country: Some("SE".into()),
        locale: Some("en".into()),
        rejected_at: Some(at - chrono::Duration::hours(2)),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(at - chrono::Duration::hours(2)),
        version: 1,
        ..ClaimRow::default()
    }
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// The texts of column `col` (1-based) of the horizon table, top to bottom.
async fn column(c: &Client, col: usize) -> Vec<String> {
    let v = js(
        c,
        &format!(
            "return [...document.querySelectorAll('#horizon tbody tr')].map(r => r.cells[{}].textContent.trim());",
            col - 1
        ),
    )
    .await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_report_fits_the_window_and_sorts_in_a_browser() {
    let db = crate::harness::sqlite_unmigrated().await;
    let (_dir, cmd) = prepared(&db);
    let long = "N".repeat(10_000);
    let long_id = format!("CPOR-{}", "9".repeat(10_000));
    for (id, name, email) in [
        ("CPOR-LONG-NAME", long.as_str(), "claims@nordljus.example"),
        (&long_id, "Short AB", "claims@nordljus.example"),
        (
            "CPOR-LONG-EMAIL",
            "Short AB",
            &format!("{long}@nordljus.example"),
        ),
    ] {
        db.store
            .put_claim_row(&long_claim(id, name, email))
            .await
            .unwrap();
    }
    cmd.ok(&["claim", "hold", "CPOR-100002", "--reason", &long]);
    let html = cmd.ok(&["dry-run", "--at", AT, "--format", "html", "--horizon", "2w"]);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let page = out.join("report.html");
    std::fs::write(&page, &html).unwrap();
    // The page does show the long values (else this test would prove nothing).
    assert!(
        html.contains(&format!(
            "<tr><td><span class=v>{long_id}</span></td><td>rejected</td>"
        )),
        "long claim id in a row"
    );
    assert!(html.contains(&format!(": {long}")), "long hold reason");
    // A partner's name is not in the report; an address too long to send to is a problem,
    // quoted shortened.
    assert!(html.contains("<tr><td><span class=v>CPOR-LONG-NAME</span></td><td>rejected</td>"));
    assert!(html.contains("(10017 characters)` is not an email address"));
    let Some(d) = driver() else { return };
    let c = browser(&d).await;
    c.goto(&format!("file://{}", page.display())).await.unwrap();
    c.wait()
        .for_element(Locator::Css("#horizon table"))
        .await
        .unwrap();

    // Nothing is wider than the window, however long a value is.
    let wide = js(
        &c,
        "const w = document.documentElement.clientWidth;
         const wide = [...document.querySelectorAll('body, body *')]
           .filter(e => e.getBoundingClientRect().right > w + 0.5)
           .map(e => e.tagName + '.' + e.className + ' right=' + e.getBoundingClientRect().right);
         return {w, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10)};",
    )
    .await;
    assert_eq!(wide["wide"], serde_json::json!([]), "{wide}");
    assert!(wide["scroll"].as_f64() <= wide["w"].as_f64(), "{wide}");

    // Beside a long value, no cell's content spills out of its cell.
    let spilled = js(
        &c,
        "return [...document.querySelectorAll('td')].filter(td => td.scrollWidth > td.clientWidth)
           .map(td => td.textContent.slice(0, 80));",
    )
    .await;
    assert_eq!(spilled, serde_json::json!([]), "cells overflow");

    // Every instant is on one line; the UTC deadline shows whole, inside the window and its cell.
    let times = js(
        &c,
        "const w = document.documentElement.clientWidth;
         const bad = [...document.querySelectorAll('time')].filter(t => t.getClientRects().length !== 1)
           .map(t => t.textContent);
         const utc = [...document.querySelectorAll('table.rows time.utc')].map(t => {
           const r = t.getBoundingClientRect(), cell = t.closest('td');
           return {text: t.textContent, inside: r.left >= 0 && r.right <= w && r.width > 0,
                   clipped: cell.scrollWidth > cell.clientWidth, lines: t.getClientRects().length};
         });
         return {bad, utc};",
    )
    .await;
    assert_eq!(times["bad"], serde_json::json!([]), "instants wrapped");
    let utc = times["utc"].as_array().unwrap();
    assert!(!utc.is_empty(), "{times}");
    for u in utc {
        assert_eq!(u["inside"], true, "{u}");
        assert_eq!(u["clipped"], false, "{u}");
        assert_eq!(u["lines"], 1, "{u}");
        assert!(u["text"].as_str().unwrap().ends_with(" UTC"), "{u}");
    }
    assert!(
        utc.iter().any(|u| u["text"] == "2027-01-04 23:00 UTC"),
        "CPOR-100006's deadline: {times}"
    );

    // Rows later in the horizon say what will happen, never `fired`.
    let outcomes: Vec<String> = serde_json::from_value(
        js(
            &c,
            "return [...document.querySelectorAll('#horizon .outcome')].map(e => e.textContent);",
        )
        .await,
    )
    .unwrap();
    assert!(!outcomes.is_empty());
    assert!(
        outcomes.iter().all(|o| o.starts_with("will ")),
        "{outcomes:?}"
    );
    let page_text = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page_text.contains("fired"), "a preview never says fired");
    std::fs::write(out.join("report.png"), c.screenshot().await.unwrap()).unwrap();

    // Clicking a header sorts the rows by it; again, the other way.
    let before = column(&c, 5).await;
    assert!(before.len() > 2, "{before:?}");
    let due = c
        .find(Locator::XPath(
            "//section[@id='horizon']//th[.='due (UTC)']",
        ))
        .await
        .unwrap();
    due.click().await.unwrap();
    let up = column(&c, 5).await;
    let mut sorted = before.clone();
    sorted.sort();
    assert_eq!(up, sorted, "ascending by due");
    due.click().await.unwrap();
    let down = column(&c, 5).await;
    sorted.reverse();
    assert_eq!(down, sorted, "descending by due");
    assert_ne!(down, up, "the order changed");
    let claims_before = column(&c, 1).await;
    c.find(Locator::XPath("//section[@id='horizon']//th[.='claim']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let claims = column(&c, 1).await;
    let mut expected = claims_before.clone();
    expected.sort();
    assert_eq!(claims, expected, "ascending by claim");
    std::fs::write(out.join("report-sorted.png"), c.screenshot().await.unwrap()).unwrap();
    c.close().await.unwrap();
    drop(d);
}
