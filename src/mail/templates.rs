//! The minijinja environment: templates per language, strict undefined variables, HTML
//! autoescape for `*.html.j2`, and the locale fallback `xx-YY` → `xx` → `en`.
//!
//! Files are `<lang>/<template_id>.{subject,txt,html}.j2` (plus `_`-prefixed partials). The
//! shipped `en`, `sv` and `de` files are compiled into the binary; a file of the same name under the
//! configured `templates.dir` overrides one, and a new `<lang>/` folder there adds a language.
//! [`Templates::load`] renders every template of every language once with sample data, so a
//! broken file fails start-up and `check-config`, naming the file.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context, path_loader};

use super::MailError;
use super::context::EmailContext;
use super::format;
use super::kind::EmailKind;

/// The language every locale falls back to.
pub const FALLBACK_LANG: &str = "en";

macro_rules! lang_files {
    ($lang:literal) => {
        lang_files!(@ $lang,
            "_layout.html.j2", "_reasons.j2",
            "partner_response_reminder.subject.j2", "partner_response_reminder.txt.j2", "partner_response_reminder.html.j2",
            "claim_rejected.subject.j2", "claim_rejected.txt.j2", "claim_rejected.html.j2",
            "consent_request.subject.j2", "consent_request.txt.j2", "consent_request.html.j2",
            "partner_approval_notice.subject.j2", "partner_approval_notice.txt.j2", "partner_approval_notice.html.j2",
            "forwarded_to_incentive_evaluation.subject.j2", "forwarded_to_incentive_evaluation.txt.j2", "forwarded_to_incentive_evaluation.html.j2",
            "sla_alert_digest.subject.j2", "sla_alert_digest.txt.j2", "sla_alert_digest.html.j2"
        )
    };
    (@ $lang:literal, $($file:literal),+) => {
        [$((concat!($lang, "/", $file), include_str!(concat!("../../templates/", $lang, "/", $file)))),+]
    };
}

/// The shipped templates, by name (`en/claim_rejected.txt.j2`).
const EMBEDDED_EN: &[(&str, &str)] = &lang_files!("en");
const EMBEDDED_SV: &[(&str, &str)] = &lang_files!("sv");
const EMBEDDED_DE: &[(&str, &str)] = &lang_files!("de");

/// The languages whose templates ship inside the binary.
pub const SHIPPED_LANGS: &[&str] = &["en", "sv", "de"];

fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED_EN
        .iter()
        .chain(EMBEDDED_SV)
        .chain(EMBEDDED_DE)
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The template set's version: a content hash (FNV-1a, 16 hex digits) of every template file
/// in force — each shipped file, or the file of the same name under `dir` that overrides it, and
/// the files of languages only `dir` has. Recorded with each outbox row, so an email's words can
/// be traced to the files it was written with. A missing `dir` is fine.
pub fn set_version(dir: &Path) -> String {
    let mut files: Vec<(String, String)> = EMBEDDED_EN
        .iter()
        .chain(EMBEDDED_SV)
        .chain(EMBEDDED_DE)
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let lang = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() || SHIPPED_LANGS.contains(&lang.as_str()) {
                continue;
            }
            for (name, _) in EMBEDDED_EN {
                let name = name.replacen("en/", &format!("{lang}/"), 1);
                files.push((name, String::new()));
            }
        }
    }
    for (name, text) in &mut files {
        if let Ok(on_disk) = std::fs::read_to_string(dir.join(name.as_str())) {
            *text = on_disk;
        }
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, text) in &files {
        for b in name.bytes().chain([0xff]).chain(text.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// One rendered email: a single-line subject, a plain-text body and an HTML body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Header-safe: control characters (CR, LF, tab …) replaced, whitespace collapsed.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part (values HTML-escaped).
    pub html: String,
    /// The language folder actually used (`sv` for `sv-SE`; `en` when nothing closer exists).
    pub locale_used: String,
}

/// Loaded, checked templates; cheap to share (`Arc<Templates>`), `Send + Sync`.
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
    langs: BTreeSet<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("langs", &self.langs)
            .finish()
    }
}

impl Templates {
    /// Loads the shipped templates with `dir`'s files over them (a missing `dir` is fine) and
    /// renders each template of each language once; the error names the file at fault.
    pub fn load(dir: &Path) -> Result<Templates, MailError> {
        let mut langs: BTreeSet<String> = SHIPPED_LANGS.iter().map(|l| l.to_string()).collect();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if entry.path().is_dir() && crate::claim::parse_locale(&name).is_ok() {
                        langs.insert(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(MailError::Dir {
                    path: dir.to_owned(),
                    source,
                });
            }
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| MailError::Template {
                file: "(syntax settings)".to_owned(),
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") || name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let disk = path_loader(dir.to_owned());
        env.set_loader(move |name| match disk(name)? {
            Some(text) => Ok(Some(text)),
            None => Ok(embedded(name).map(Into::into)),
        });
        env.add_filter("long_date", format::long_date);
        env.add_filter("utc_time", format::utc_time);
        env.add_filter("duration", format::duration);

        let templates = Templates {
            env,
            dir: dir.to_owned(),
            langs,
        };
        for lang in &templates.langs {
            for ctx in super::samples::all() {
                templates.render_lang(lang, &ctx)?;
            }
        }
        Ok(templates)
    }

    /// The languages available (folder names), always including the shipped `en`, `sv`, `de`.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.langs.iter().map(String::as_str)
    }

    /// The language used for `locale`: the exact tag, else its primary language, else `en`.
    pub fn resolve_locale(&self, locale: &str) -> &str {
        let tag = locale.trim().replace('_', "-");
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        [tag.as_str(), primary.as_str()]
            .into_iter()
            .find_map(|cand| self.langs.iter().find(|l| l.eq_ignore_ascii_case(cand)))
            .map_or(FALLBACK_LANG, String::as_str)
    }

    /// Renders `ctx` (its [`EmailKind`] picks the files) in the language closest to `locale`;
    /// dates and the zone's name follow `locale` itself (`en-GB` and `en-US` share `en/` but
    /// not their date order).
    pub fn render(&self, locale: &str, ctx: &EmailContext) -> Result<RenderedEmail, MailError> {
        let lang = self.resolve_locale(locale).to_owned();
        self.render_in(&lang, locale, ctx)
    }

    fn render_lang(&self, lang: &str, ctx: &EmailContext) -> Result<RenderedEmail, MailError> {
        self.render_in(lang, lang, ctx)
    }

    /// Renders with the files of folder `lang` for a reader in `locale`. Besides the context's
    /// fields, templates see `lang`, `locale` (the text locale: [`format::text_locale`]) and,
    /// for emails that name a last day, `time_zone_name` ([`format::zone_name_in`]).
    fn render_in(
        &self,
        lang: &str,
        locale: &str,
        ctx: &EmailContext,
    ) -> Result<RenderedEmail, MailError> {
        let id = ctx.template_id();
        let text_locale = format::text_locale(locale, lang);
        let zone = ctx
            .time_zone()
            .map(|tz| format::zone_name_in(&text_locale, tz));
        let vars = match zone {
            Some(zone) => context! {
                lang => lang,
                locale => text_locale.to_string(),
                time_zone_name => zone,
                ..ctx.fields()
            },
            None => context! { lang => lang, locale => text_locale.to_string(), ..ctx.fields() },
        };
        let part = |kind: &str| -> Result<String, MailError> {
            let name = file_name(lang, id, kind);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&vars))
                .map_err(|e| self.error(&name, &e))
        };
        let subject = sanitize_header(&part("subject")?);
        if subject.is_empty() {
            return Err(MailError::Template {
                file: self.display_name(&file_name(lang, id, "subject")),
                message: "the subject renders empty".to_owned(),
            });
        }
        Ok(RenderedEmail {
            subject,
            text: part("txt")?,
            html: part("html")?,
            locale_used: lang.to_owned(),
        })
    }

    fn display_name(&self, name: &str) -> String {
        let on_disk = self.dir.join(name);
        if on_disk.is_file() {
            on_disk.display().to_string()
        } else if embedded(name).is_some() {
            format!("built-in {name}")
        } else {
            format!("{} (missing)", on_disk.display())
        }
    }

    fn error(&self, rendering: &str, e: &minijinja::Error) -> MailError {
        // Name the file where the error is (a partial, maybe), not just the one being rendered.
        let at = e.name().unwrap_or(rendering);
        let mut message = match e.line() {
            Some(line) => format!("line {line}: {e}"),
            None => e.to_string(),
        };
        if at != rendering {
            message.push_str(&format!(" (while rendering {rendering})"));
        }
        MailError::Template {
            file: self.display_name(at),
            message,
        }
    }
}

fn file_name(lang: &str, id: EmailKind, kind: &str) -> String {
    format!("{lang}/{}.{kind}.j2", id.as_str())
}

/// Makes `value` safe for a header: control characters become spaces, whitespace collapses.
pub fn sanitize_header(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_lose_line_breaks() {
        assert_eq!(
            sanitize_header(" Claim\r\nBcc: x@example.com\t ok "),
            "Claim Bcc: x@example.com ok"
        );
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn shipped_templates_load_and_render() {
        let t = Templates::load(Path::new("/nonexistent")).unwrap();
        for ctx in crate::mail::samples::all() {
            for &lang in SHIPPED_LANGS {
                let r = t.render(lang, &ctx).unwrap();
                assert_eq!(r.locale_used, lang);
                assert!(!r.subject.contains('\n') && !r.text.is_empty() && !r.html.is_empty());
            }
        }
    }
}
