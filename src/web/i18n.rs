//! Languages: the message catalogues (`templates/i18n/<lang>.toml`, overridable key by key from
//! `server.templates_dir`), the language of each request (`Accept-Language`, else
//! `[server] default_language`), and [`Message`] — a key and its arguments that Rust code hands
//! to a page instead of English text, rendered in the request's language at the edge.
//!
//! The language lives in a task-local for the duration of the request, like the CSP nonce, so
//! every template rendered while answering gets `lang` and `t()` without handlers passing it
//! along. It is worked out only when something is translated: a JSON or redirect answer costs a
//! header clone.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 tag, as in `<html lang>` and the catalogue's file name.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// A language tag's primary subtag: `fr`, `fr-FR`, `FR-ca` → French. Unknown → None.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim();
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fr,
            Lang::Fr => Lang::En,
        }
    }
}

/// Entries of an `Accept-Language` header read at most (a longer one only pads).
const MAX_RANGES: usize = 32;

/// The language for an `Accept-Language` header: the supported one with the highest q-value
/// (the first listed on a tie); `*` stands for the default; none fitting → the default.
pub fn negotiate(accept_language: Option<&str>, default: Lang) -> Lang {
    let Some(header) = accept_language else {
        return default;
    };
    let mut best: Option<(u16, Lang)> = None;
    for range in header.split(',').take(MAX_RANGES) {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let mut q = 1000u16;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_q(value.trim()).unwrap_or_default();
            }
        }
        if q == 0 {
            continue;
        }
        let lang = if tag == "*" {
            Some(default)
        } else {
            Lang::from_tag(tag)
        };
        if let Some(lang) = lang {
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
    }
    best.map(|(_, l)| l).unwrap_or(default)
}

/// An RFC 9110 qvalue in thousandths: `0`, `0.8`, `1.000`. Anything else is not a qvalue.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scaled = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(scaled),
        "1" if scaled == 0 => Some(1000),
        _ => None,
    }
}

/// An argument of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    /// Written out the reader's way: "31 December 2022", « 31 décembre 2022 ».
    Date(NaiveDate),
    /// Another message, in the same language.
    Message(Box<Message>),
}

/// Text for a person, as a catalogue key and its `{name}` arguments; rendered in the request's
/// language by [`Catalogues::render`] (error pages do it at the edge). A key that no catalogue
/// has shows as it is, so `Message::from("Some English text")` still reads.
///
/// Boxed: a pointer wide, so results carrying a page error stay small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message(Box<Parts>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
    key: Cow<'static, str>,
    args: Vec<(&'static str, Arg)>,
}

impl Message {
    pub fn new(key: impl Into<Cow<'static, str>>) -> Message {
        Message(Box::new(Parts {
            key: key.into(),
            args: Vec::new(),
        }))
    }
    pub fn arg(mut self, name: &'static str, value: impl Into<String>) -> Message {
        self.0.args.push((name, Arg::Text(value.into())));
        self
    }
    pub fn date(mut self, name: &'static str, day: NaiveDate) -> Message {
        self.0.args.push((name, Arg::Date(day)));
        self
    }
    pub fn nested(mut self, name: &'static str, message: Message) -> Message {
        self.0.args.push((name, Arg::Message(Box::new(message))));
        self
    }
    /// The catalogue key (or the text itself, for text that is no key).
    pub fn key(&self) -> &str {
        &self.0.key
    }
    pub fn args(&self) -> &[(&'static str, Arg)] {
        &self.0.args
    }
    /// In the language of the request being answered (English outside a request).
    pub fn render(&self, catalogues: &Catalogues) -> String {
        catalogues.render(current_lang(), self)
    }
}

impl From<&'static str> for Message {
    fn from(key: &'static str) -> Message {
        Message::new(key)
    }
}

impl From<String> for Message {
    fn from(key: String) -> Message {
        Message::new(key)
    }
}

/// The built-in catalogues: the same files as the repository's `templates/i18n/`.
const BUILTIN: [(Lang, &str); 2] = [
    (Lang::En, include_str!("../../templates/i18n/en.toml")),
    (Lang::Fr, include_str!("../../templates/i18n/fr.toml")),
];

/// The messages of every language: the built-in ones, with an admin's
/// `templates_dir/i18n/<lang>.toml` laid over them key by key.
#[derive(Debug, Clone, Default)]
pub struct Catalogues {
    by_lang: HashMap<Lang, HashMap<String, String>>,
}

impl Catalogues {
    /// The built-in catalogues alone.
    pub fn builtin() -> &'static Catalogues {
        static BUILT_IN: LazyLock<Catalogues> = LazyLock::new(|| {
            let mut c = Catalogues::default();
            for (lang, text) in BUILTIN {
                // A test parses both files: a broken built-in catalogue never ships.
                let table = parse(text).unwrap_or_default();
                c.by_lang.insert(lang, table);
            }
            c
        });
        &BUILT_IN
    }

    /// The built-in catalogues with `dir/i18n/<lang>.toml` laid over them. A file that is there
    /// but cannot be read is reported (and left out), never fatal: the pages keep working.
    pub fn load(dir: &Path) -> (Catalogues, Vec<String>) {
        let mut c = Catalogues::builtin().clone();
        let mut problems = Vec::new();
        for lang in Lang::ALL {
            let path = dir.join("i18n").join(format!("{}.toml", lang.code()));
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            match parse(&text) {
                Ok(table) => c.by_lang.entry(lang).or_default().extend(table),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        (c, problems)
    }

    fn get(&self, lang: Lang, key: &str) -> Option<&str> {
        [lang, lang.other()]
            .iter()
            .find_map(|l| self.by_lang.get(l)?.get(key))
            .map(String::as_str)
    }

    /// The text of `key`: in `lang`, else in the other language, else the key itself.
    pub fn lookup<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.get(lang, key).unwrap_or(key)
    }

    /// The keys of one language's catalogue (for the completeness test and `check`).
    pub fn keys(&self, lang: Lang) -> impl Iterator<Item = &str> {
        self.by_lang
            .get(&lang)
            .into_iter()
            .flat_map(|t| t.keys().map(String::as_str))
    }

    /// `key` in `lang` with its `{name}` placeholders filled from `args`.
    pub fn text(&self, lang: Lang, key: &str, args: &[(&str, String)]) -> String {
        fill(self.lookup(lang, key), |name| {
            args.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    }

    pub fn render(&self, lang: Lang, message: &Message) -> String {
        fill(self.lookup(lang, message.key()), |name| {
            message
                .args()
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, arg)| match arg {
                    Arg::Text(s) => s.clone(),
                    Arg::Date(day) => self.date(lang, *day),
                    Arg::Message(inner) => self.render(lang, inner),
                })
        })
    }

    /// A date the reader's way, from the catalogue's `date.format`, month names and the days
    /// written otherwise than as a number (« 1er »).
    pub fn date(&self, lang: Lang, day: NaiveDate) -> String {
        let month = self
            .lookup(lang, &format!("date.month.{}", day.month()))
            .to_string();
        self.text(
            lang,
            "date.format",
            &[
                (
                    "day",
                    self.get(lang, &format!("date.day.{}", day.day()))
                        .map(str::to_string)
                        .unwrap_or_else(|| day.day().to_string()),
                ),
                ("month", month),
                ("year", day.year().to_string()),
            ],
        )
    }
}

/// Replace each `{name}` by its value; an unknown placeholder stays as written (a typo in a
/// custom catalogue shows, rather than hiding text). `{{` and `}}` stand for braces.
fn fill(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
            let name = &tail[1..end];
            match value(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders of a catalogue text, for the test that both languages use the same.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    fill(text, |name| {
        names.insert(name.to_string());
        Some(String::new())
    });
    names.into_iter().collect()
}

/// A catalogue file: tables of strings, flattened to dotted keys (`[login] title = …` is
/// `login.title`).
fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = HashMap::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("`{key}` must be a string")),
        }
    }
    Ok(())
}

/// What the request asked for, worked out on first use.
struct RequestLanguage {
    accept: Option<HeaderValue>,
    default: Lang,
    chosen: OnceCell<Lang>,
}

tokio::task_local! {
    static LANGUAGE: RequestLanguage;
}

/// The language of the request being answered; the default one outside a request.
pub fn current_lang() -> Lang {
    LANGUAGE
        .try_with(|l| {
            *l.chosen.get_or_init(|| {
                negotiate(l.accept.as_ref().and_then(|v| v.to_str().ok()), l.default)
            })
        })
        .unwrap_or_default()
}

/// Layer: the request's language for whatever is rendered while answering it (`[server]
/// default_language` when `Accept-Language` names none we have), and `Vary: Accept-Language`
/// on an answer that was translated.
#[derive(Debug, Clone, Copy, Default)]
pub struct LanguageLayer {
    default: Lang,
}

impl LanguageLayer {
    pub fn new(default: Lang) -> LanguageLayer {
        LanguageLayer { default }
    }
}

impl<S> Layer<S> for LanguageLayer {
    type Service = ChooseLanguage<S>;
    fn layer(&self, inner: S) -> ChooseLanguage<S> {
        ChooseLanguage {
            inner,
            default: self.default,
        }
    }
}

#[derive(Clone)]
pub struct ChooseLanguage<S> {
    inner: S,
    default: Lang,
}

impl<S> Service<Request> for ChooseLanguage<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LanguageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let language = RequestLanguage {
            accept: request.headers().get(header::ACCEPT_LANGUAGE).cloned(),
            default: self.default,
            chosen: OnceCell::new(),
        };
        LanguageFuture {
            inner: LANGUAGE.scope(language, self.inner.call(request)),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct LanguageFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestLanguage, F>,
    }
}

impl<F, E> Future for LanguageFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.project().inner;
        let mut response = ready!(inner.as_mut().poll(cx))?;
        let translated = inner.take_value().is_some_and(|l| l.chosen.get().is_some());
        if translated {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept-language"));
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let fr = Lang::Fr;
        let en = Lang::En;
        for (header, default, want) in [
            (None, en, en),
            (None, fr, fr),
            (Some(""), fr, fr),
            (Some("fr"), en, fr),
            (Some("fr-FR"), en, fr),
            (Some("FR-ca"), en, fr),
            (Some("en-GB"), fr, en),
            (Some("de-DE, fr;q=0.5, en;q=0.4"), en, fr),
            (Some("en;q=0.4, fr;q=0.8"), en, fr),
            (Some("fr;q=0.8, en;q=0.8"), en, fr),
            (Some("fr;q=0, en;q=0.1"), fr, en),
            (Some("de, it"), fr, fr),
            (Some("*"), fr, fr),
            (Some("de, *;q=0.5, en;q=0.2"), fr, fr),
            (Some("fr;q=2"), en, en),
            (Some("fr;q=abc"), en, en),
            (Some("fr;q=0.8x"), en, en),
            (Some(";;;,,,=q"), fr, fr),
            (Some("fr ; q=0.9 , en ; q=0.95"), fr, en),
        ] {
            assert_eq!(negotiate(header, default), want, "{header:?}");
        }
        let padded = format!("{}fr", "x,".repeat(100));
        assert_eq!(negotiate(Some(&padded), Lang::En), Lang::En);
    }

    #[test]
    fn qvalues_follow_the_rfc_grammar() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.123"), Some(123));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.5", "0.1234", "2", "-0.5", "", ".5", "0.5e1"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_missing_key_falls_back_to_the_other_language_then_to_the_key() {
        let mut c = Catalogues::default();
        c.by_lang.insert(
            Lang::En,
            HashMap::from([
                ("only.en".to_string(), "English {who}".to_string()),
                ("both".to_string(), "Both".to_string()),
            ]),
        );
        c.by_lang.insert(
            Lang::Fr,
            HashMap::from([("both".to_string(), "Les deux".to_string())]),
        );
        assert_eq!(c.lookup(Lang::Fr, "both"), "Les deux");
        assert_eq!(c.lookup(Lang::Fr, "only.en"), "English {who}");
        assert_eq!(c.lookup(Lang::En, "nowhere"), "nowhere");
        let m = Message::new("only.en").arg("who", "Alice");
        assert_eq!(c.render(Lang::Fr, &m), "English Alice");
        assert_eq!(
            c.render(Lang::Fr, &Message::from("Plain text")),
            "Plain text"
        );
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_stay() {
        let v = |name: &str| (name == "a").then(|| "A".to_string());
        assert_eq!(fill("x {a} y {b} {{a}} }", v), "x A y {b} {a} }");
        assert_eq!(fill("{a", v), "{a");
        assert_eq!(fill("{a}{a}", v), "AA");
        assert_eq!(placeholders("{b} {a} {b} {{c}}"), ["a", "b"]);
    }

    #[test]
    fn the_built_in_catalogues_parse_and_have_the_same_keys_and_placeholders() {
        for (lang, text) in BUILTIN {
            if let Err(e) = parse(text) {
                panic!("templates/i18n/{}.toml: {e}", lang.code());
            }
        }
        let c = Catalogues::builtin();
        let en: std::collections::BTreeSet<&str> = c.keys(Lang::En).collect();
        let fr: std::collections::BTreeSet<&str> = c.keys(Lang::Fr).collect();
        assert!(en.len() > 50, "{} keys", en.len());
        let only_en: Vec<_> = en.difference(&fr).collect();
        let only_fr: Vec<_> = fr.difference(&en).collect();
        assert!(
            only_en.is_empty() && only_fr.is_empty(),
            "only in en.toml: {only_en:?}; only in fr.toml: {only_fr:?}"
        );
        for key in en {
            assert_eq!(
                placeholders(c.lookup(Lang::En, key)),
                placeholders(c.lookup(Lang::Fr, key)),
                "placeholders of `{key}`"
            );
        }
    }

    #[test]
    fn dates_read_the_readers_way() {
        let c = Catalogues::builtin();
        let day = NaiveDate::from_ymd_opt(2022, 12, 31).unwrap();
        assert_eq!(c.date(Lang::En, day), "31 December 2022");
        assert_eq!(c.date(Lang::Fr, day), "31 décembre 2022");
        let first = NaiveDate::from_ymd_opt(2030, 2, 1).unwrap();
        assert_eq!(c.date(Lang::Fr, first), "1er février 2030");
    }

    #[test]
    fn an_override_file_replaces_only_its_keys_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("i18n")).unwrap();
        std::fs::write(
            dir.path().join("i18n/fr.toml"),
            "[login]\ntitle = \"Identifiez-vous\"\n",
        )
        .unwrap();
        let (c, problems) = Catalogues::load(dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.lookup(Lang::Fr, "login.title"), "Identifiez-vous");
        assert_eq!(c.lookup(Lang::Fr, "login.submit"), "Se connecter");
        assert_eq!(c.lookup(Lang::En, "login.title"), "Sign in");

        std::fs::write(dir.path().join("i18n/en.toml"), "[login\n").unwrap();
        std::fs::write(dir.path().join("i18n/fr.toml"), "login = 3\n").unwrap();
        let (c, problems) = Catalogues::load(dir.path());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[1].contains("`login` must be a string"),
            "{problems:?}"
        );
        assert_eq!(c.lookup(Lang::En, "login.title"), "Sign in");
    }
}

/// Every key the code and the built-in templates name is in the catalogues: a typo would show
/// the key to a person.
#[cfg(test)]
mod keys_used {
    use super::*;

    const SECTIONS: &[&str] = &[
        "page.",
        "date.",
        "login.",
        "upstream.",
        "logout.",
        "form_post.",
        "error.",
        "refusal.",
        "oidc.",
        "saml.",
        "landing.",
        "demo.",
        "admin.",
    ];

    /// String literals that look like catalogue keys: `"section.word.word"`, lowercase.
    fn keys_in(text: &str) -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| SECTIONS.iter().any(|p| s.starts_with(p)))
            .filter(|s| {
                s.len() < 60
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b))
                    && !s.ends_with('.')
            })
            .map(str::to_string)
            .collect()
    }

    fn files(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }

    /// Literals that look like keys but are something else: template names, config keys (their
    /// files are not scanned), audit events, hosts.
    const NOT_KEYS: &[&str] = &[
        "login.html",
        "error.html",
        "logout.html",
        "form_post.html",
        "landing.html",
        "saml.sso",
        "saml.slo",
        "saml.service_providers",
        "login.upstream",
        "login.live.com",
        "login.microsoftonline.com",
        "login.microsoft.com",
        // Audit events and config keys of the admin room.
        "admin.revoke",
        "admin.token",
        "admin.token_file",
        "admin.groups",
    ];

    #[test]
    fn every_key_named_in_the_code_and_templates_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        files(&root.join("src"), "rs", &mut paths);
        files(&root.join("templates"), "html", &mut paths);
        let c = Catalogues::builtin();
        let known: std::collections::BTreeSet<&str> = c.keys(Lang::En).collect();
        let mut missing = Vec::new();
        let mut seen = 0;
        for path in paths {
            if path.starts_with(root.join("src/config")) || path.ends_with("app/check.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for key in keys_in(&text) {
                seen += 1;
                if !known.contains(key.as_str()) && !NOT_KEYS.contains(&key.as_str()) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(seen > 100, "only {seen} keys found: is the scan broken?");
        assert!(
            missing.is_empty(),
            "keys not in the catalogues: {missing:#?}"
        );
    }
}
