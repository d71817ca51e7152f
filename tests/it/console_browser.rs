//! The console in a real browser (headless Chromium through chromedriver), as an operator uses
//! it: open the overview, search a claim, open its page, see its timers and history, sort the
//! timers by a click on a header, retry a dead-lettered email with the operator token and see it
//! delivered after the next pass. The same POST without the token is refused and changes
//! nothing. Screenshots of the overview and the claim page go to `target/console-screenshots/`
//! (and to `docs/` with `CPOR_UPDATE_SCREENSHOTS=1`). Skipped when chromedriver or chromium is
//! missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cpor_worker::store::Repairs;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::cli_run::{start_daemon, wait_for};
use crate::console_http::{TOKEN, dead_id, request, seed};
use crate::harness::smtp::{SmtpSink, free_port};

backend_tests_db!(an_operator_retries_a_dead_letter_in_the_browser);

/// chromedriver on a free loopback port, killed when dropped.
pub(crate) struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn driver() -> Option<Driver> {
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!(
            "skipped: /usr/bin/chromium is missing (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| eprintln!("skipped: chromedriver does not start: {e}"))
        .ok()?;
    let d = Driver(child, port);
    wait_for(20, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .then_some(d)
}

pub(crate) async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.1))
        .await
        .expect("a WebDriver session")
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    if std::env::var("CPOR_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::write(docs.join(format!("console-{name}.png")), &png).unwrap();
    }
}

async fn an_operator_retries_a_dead_letter_in_the_browser(db: &crate::harness::TestStore) {
    seed(db).await;
    let Some(d) = driver() else { return };
    let Some(sink) = SmtpSink::start("console_browser", &["--reject", "gone@nordljus.example"])
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let env = [
        ("CPOR_DATABASE_URL", db.url.as_str()),
        ("CPOR_SMTP_URL", smtp.as_str()),
        ("CPOR_OPERATOR_TOKEN", TOKEN),
    ];
    let (child, port) = start_daemon(dir.path(), &[], &env);
    let child = crate::console_http::Running(Some(child));
    let id = dead_id(port);
    let base = format!("http://127.0.0.1:{port}");
    let c = browser(&d).await;

    // The overview: the dead letter is counted and links to its list.
    c.goto(&format!("{base}/")).await.unwrap();
    let dead = c
        .wait()
        .for_element(Locator::Css("#count-dead .n"))
        .await
        .unwrap();
    assert_eq!(dead.text().await.unwrap(), "1");
    screenshot(&c, "overview").await;

    // Search the claim by its partner's name and open it.
    c.goto(&format!("{base}/claims")).await.unwrap();
    let q = c
        .wait()
        .for_element(Locator::Css("#search-q"))
        .await
        .unwrap();
    q.send_keys("Nordljus").await.unwrap();
    c.wait()
        .for_element(Locator::Css("#search-go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::LinkText("c1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        c.wait()
            .for_element(Locator::Css("#claim-id"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "c1"
    );
    let timers = c
        .wait()
        .for_element(Locator::Css("#timers"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(timers.contains("rejection_notice"), "{timers}");
    assert!(timers.contains("dispute_window_close"), "{timers}");
    let history = c
        .wait()
        .for_element(Locator::Css("#history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("system"), "{history}");
    screenshot(&c, "claim").await;

    // A click on a header sorts the table (the inline script the page's CSP allows by hash).
    let names = || async {
        let v = c
            .execute(
                "return [...document.querySelectorAll('#timers tbody tr')].map(r => r.cells[0].textContent);",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value::<Vec<String>>(v).unwrap()
    };
    let mut sorted = names().await;
    assert!(sorted.len() > 1, "{sorted:?}");
    sorted.sort();
    let header = c
        .find(Locator::XPath("//table[@id='timers']//th[.='Timer']"))
        .await
        .unwrap();
    header.click().await.unwrap();
    assert_eq!(names().await, sorted, "ascending");
    header.click().await.unwrap();
    sorted.reverse();
    assert_eq!(names().await, sorted, "descending");

    // Without the token the same POST is refused and changes nothing.
    let (status, _, _) = request(port, "POST", &format!("/outbox/{id}/retry"), &[], "");
    assert_eq!(status, 403);
    assert_eq!(
        db.store.outbox_row(id).await.unwrap().unwrap().state,
        "dead"
    );

    // The main system fixes the address; the operator retries with the token.
    crate::harness::exec(
        &db.store,
        "UPDATE claims SET partner_email = 'claims@nordljus.example', version = 2 WHERE id = 'c1'",
    )
    .await;
    c.refresh().await.unwrap();
    let form = c
        .wait()
        .for_element(Locator::Css(&format!("form[action='/outbox/{id}/retry']")))
        .await
        .unwrap();
    form.find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("address fixed")
        .await
        .unwrap();
    form.find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = c
        .wait()
        .for_element(Locator::Css(".notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("claims@nordljus.example"), "{notice}");

    // The next pass delivers it; the page says so.
    let mut delivered = false;
    for _ in 0..60 {
        c.goto(&format!("{base}/claims/c1")).await.unwrap();
        let emails = c
            .wait()
            .for_element(Locator::Css("#emails"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if emails.contains("sent") && emails.contains("claims@nordljus.example") {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(delivered, "the retried email was not shown as sent");
    assert!(
        sink.messages()
            .iter()
            .any(|(_, r)| r.contains(&"claims@nordljus.example".to_owned()))
    );
    c.close().await.unwrap();
    let (code, err) = child.stop();
    assert_eq!(code, Some(0), "{err}");
    drop(d);
}
