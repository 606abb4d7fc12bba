//! The admin console and the person-facing pages in a real browser: headless Chromium driven
//! through chromedriver (WebDriver) by fantoccini.
//!
//! One chromedriver for the module, started here on a free port; a fresh Chromium profile per
//! language (the language comes from the browser's Accept-Language). Without Chromium the test
//! skips with a message, except with `CI=true`, where it fails. On failure a screenshot is
//! kept in `target/browser-screenshots/` (the path is printed). With
//! `PASSERELLE_SCREENSHOTS=docs/screenshots` it also writes the README's screenshots there.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::common::*;
use crate::console::with_admins;
use crate::migrations::{lucca_config, lucca_simulator, EVERY_CLASS};

const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

/// chromedriver, stopped (killed and reaped) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// chromedriver on a free loopback port, or why not.
async fn driver() -> Result<(Driver, PathBuf), String> {
    let chromium =
        first_existing(&CHROMIUM).ok_or("no chromium binary (Debian package `chromium`)")?;
    let chromedriver = first_existing(&CHROMEDRIVER)
        .ok_or("no chromedriver binary (Debian package `chromium-driver`)")?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await {
            if r.json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true)
            {
                return Ok((driver, chromium));
            }
        }
        if Instant::now() > deadline {
            return Err("chromedriver did not become ready within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Chromium with a fresh profile whose Accept-Language is `lang`.
async fn browser(driver: &Driver, chromium: &Path, lang: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                format!("--lang={lang}"),
                "--window-size=1280,900",
            ],
            "prefs": {"intl.accept_languages": lang},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Where failure screenshots go.
fn failure_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots")
}

async fn screenshot(client: &Client, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match client.screenshot().await {
        Ok(png) => {
            let _ = std::fs::write(path, png);
        }
        Err(e) => eprintln!("no screenshot: {e}"),
    }
}

/// The screenshots the README shows.
const DOC_SHOTS: [&str; 8] = [
    "status-en",
    "migration-en",
    "migration-fr",
    "people-en",
    "audit-en",
    "connections-en",
    "keys-en",
    "phone-keys-en",
];

/// The README's screenshot of the current page, when asked for.
async fn doc_shot(client: &Client, name: &str) {
    if !DOC_SHOTS.contains(&name) {
        return;
    }
    if let Ok(dir) = std::env::var("PASSERELLE_SCREENSHOTS") {
        screenshot(
            client,
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(dir)
                .join(format!("{name}.png")),
        )
        .await;
    }
}

async fn css(client: &Client, selector: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = client.current_url().await.ok().map(|u| u.to_string());
            panic!("no `{selector}` on {url:?}: {e}")
        }
    }
}

/// Click what leads to another page, and wait until that page has loaded.
async fn click_through(client: &Client, selector: &str) {
    client
        .execute("window.__before_click = true;", vec![])
        .await
        .unwrap();
    css(client, selector).await.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = client
            .execute(
                "return [window.__before_click === true, document.readyState];",
                vec![],
            )
            .await;
        if let Ok(v) = v {
            if v[0] == false && v[1] == "complete" {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "clicking `{selector}` led to no new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(client: &Client, selector: &str) -> String {
    css(client, selector).await.text().await.unwrap()
}

async fn body(client: &Client) -> String {
    text_of(client, "body").await
}

async fn path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

/// The page is no wider than the window: nothing scrolls sideways.
async fn no_horizontal_scroll(client: &Client, what: &str) {
    let v = client
        .execute(
            "return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (doc, body, width) = (
        v[0].as_i64().unwrap(),
        v[1].as_i64().unwrap(),
        v[2].as_i64().unwrap(),
    );
    assert!(width <= 400, "the phone-width window is {width}px wide");
    assert!(
        doc <= width && body <= width,
        "{what} scrolls sideways at {width}px: the page is {doc}px (body {body}px)"
    );
}

/// What each language's pages say (checked in the browser).
struct Words {
    lang: &'static str,
    signed_in_as: &'static str,
    sign_in: &'static str,
    not_admin: &'static str,
}

const LANGUAGES: [Words; 2] = [
    Words {
        lang: "fr",
        signed_in_as: "Connecté en tant que",
        sign_in: "Connexion",
        not_admin: "pas administrateur",
    },
    Words {
        lang: "en",
        signed_in_as: "Signed in as",
        sign_in: "Sign in",
        not_admin: "not an administrator",
    },
];

async fn sign_in(client: &Client, user: &str, password: &str) {
    css(client, "#username")
        .await
        .send_keys(user)
        .await
        .unwrap();
    css(client, "#password")
        .await
        .send_keys(password)
        .await
        .unwrap();
    click_through(client, "form[action='/login'] button[type=submit]").await;
}

/// The whole walk through the console in one language.
async fn walk(client: &Client, server: &TestServer, words: &Words, upload: &Path) {
    // Sign in as an admin: the console starts Passerelle's own sign-in.
    client.goto(&server.url("/admin/")).await.unwrap();
    assert_eq!(path(client).await, "/login");
    assert!(body(client).await.contains(words.sign_in));
    doc_shot(client, &format!("sign-in-{}", words.lang)).await;
    sign_in(client, "bob@acme.test", "bob-password").await;
    css(client, "nav.tabs").await;
    assert_eq!(path(client).await, "/admin/");
    assert!(body(client)
        .await
        .contains(&format!("{} bob@acme.test", words.signed_in_as)));
    doc_shot(client, &format!("status-{}", words.lang)).await;

    // A dry run, watched to the end on its progress bar.
    client
        .goto(&server.url("/admin/console/migrations"))
        .await
        .unwrap();
    css(client, "input[type=file]")
        .await
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    css(client, "input[name=mode][value=dry_run]")
        .await
        .click()
        .await
        .unwrap();
    click_through(client, "#start").await;
    css(client, "progress#bar").await;
    assert!(path(client).await.starts_with("/admin/console/migrations/"));
    let job_url = client.current_url().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The page reloads itself when the stream says the job is done.
    loop {
        let finished = css(client, "#progress-card")
            .await
            .attr("data-finished")
            .await
            .unwrap();
        if finished.as_deref() == Some("true") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dry run did not finish within 60 s (data-finished={finished:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bar = css(client, "progress#bar").await;
    let (value, max) = (
        bar.attr("value").await.unwrap(),
        bar.attr("max").await.unwrap(),
    );
    assert_eq!(value, max, "the bar is full at the end");
    assert_eq!(max.as_deref(), Some("11"), "one row per line of the file");
    doc_shot(client, &format!("migration-{}", words.lang)).await;

    // The report, filtered on the server.
    let select = css(client, "select#class").await;
    select.select_by_value("leaver").await.unwrap();
    click_through(client, "#report-filter button[type=submit]").await;
    let classes = client
        .find_all(Locator::Css("#report-table tbody tr td:nth-child(2)"))
        .await
        .unwrap();
    assert!(!classes.is_empty(), "a leaver row");
    for cell in classes {
        assert!(cell.text().await.unwrap().contains("leaver"));
    }
    assert!(client
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .contains("class=leaver"));
    // Sorted by person, descending, through the header link.
    client.goto(job_url.as_str()).await.unwrap();
    click_through(client, "#report-table thead th:nth-child(3) a").await;
    click_through(client, "#report-table thead th:nth-child(3) a").await;
    let emails: Vec<String> = {
        let mut v = Vec::new();
        for cell in client
            .find_all(Locator::Css("#report-table tbody td:nth-child(3)"))
            .await
            .unwrap()
        {
            v.push(cell.text().await.unwrap().to_lowercase());
        }
        v
    };
    let mut sorted = emails.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(emails, sorted, "sorted by person, descending");

    // Revoke a person: their refresh token fails afterwards.
    let issued = crate::revoke::tokens(server, &Browser::new()).await;
    let refresh = issued["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    client
        .goto(&server.url("/admin/console/people?email=alice@acme.test"))
        .await
        .unwrap();
    assert!(text_of(client, "#identity").await.contains("corp-managers"));
    doc_shot(client, &format!("people-{}", words.lang)).await;
    click_through(client, "#revoke button").await;
    assert!(
        text_of(client, "#done").await.contains("1"),
        "the notice counts what was revoked"
    );
    let r = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the revoked refresh token fails");

    // The audit log shows it, filtered.
    client
        .goto(&server.url("/admin/console/audit"))
        .await
        .unwrap();
    css(client, "#event")
        .await
        .send_keys("admin.revoke")
        .await
        .unwrap();
    click_through(client, "#audit-filter button[type=submit]").await;
    let table = text_of(client, "#audit-table").await;
    assert!(
        table.contains("admin.revoke") && table.contains("alice@acme.test"),
        "{table}"
    );
    doc_shot(client, &format!("audit-{}", words.lang)).await;

    client
        .goto(&server.url("/admin/console/connections"))
        .await
        .unwrap();
    css(client, "#discovery-url").await;
    doc_shot(client, &format!("connections-{}", words.lang)).await;
    client
        .goto(&server.url("/admin/console/keys"))
        .await
        .unwrap();
    css(client, "#keys-table").await;
    doc_shot(client, &format!("keys-{}", words.lang)).await;

    // A phone: no page scrolls sideways.
    client.set_window_size(360, 740).await.unwrap();
    let job_path = job_url.path().to_string();
    for page in [
        "/admin/",
        "/admin/console/migrations",
        job_path.as_str(),
        "/admin/console/people?email=alice@acme.test",
        "/admin/console/audit",
        "/admin/console/connections",
        "/admin/console/keys",
        "/admin/resume?req=expired", // an error page
        "/logout",
    ] {
        client.goto(&server.url(page)).await.unwrap();
        css(client, "body").await;
        no_horizontal_scroll(client, page).await;
    }
    if words.lang == "en" {
        doc_shot(client, "phone-keys-en").await;
    }
    // Signed out, then signed in as someone who is not an admin: the sign-in and refusal pages.
    click_through(client, "form[action='/logout'] button").await;
    client.goto(&server.url("/admin/")).await.unwrap();
    no_horizontal_scroll(client, "the sign-in page").await;
    sign_in(client, "alice@acme.test", ALICE_PASSWORD).await;
    assert!(body(client).await.contains(words.not_admin));
    no_horizontal_scroll(client, "the refusal page").await;
    client.set_window_size(1280, 900).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser_in_every_language_and_at_phone_width() {
    let (driver, chromium) = match driver().await {
        Ok(d) => d,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but the browser tests cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipped: the browser tests need Chromium and chromedriver ({why})");
            return;
        }
    };
    let sim = lucca_simulator().await;
    let server = start(|c| {
        with_admins(c);
        lucca_config(c, &sim);
    })
    .await;
    let files = tempfile::tempdir().unwrap();
    let upload = files.path().join("people.csv");
    std::fs::write(&upload, EVERY_CLASS).unwrap();
    for words in &LANGUAGES {
        let profile = files.path().join(format!("profile-{}", words.lang));
        let client = browser(&driver, &chromium, words.lang, &profile).await;
        let outcome = std::panic::AssertUnwindSafe(walk(&client, &server, words, &upload))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let shot = failure_dir().join(format!("console-{}.png", words.lang));
            screenshot(&client, &shot).await;
            eprintln!(
                "browser test failed on {:?}; screenshot: {}",
                client.current_url().await.ok().map(|u| u.to_string()),
                shot.display()
            );
            let _ = client.close().await;
            std::panic::resume_unwind(panic);
        }
        client.close().await.unwrap();
    }
}
