//! Reading one settings layer: a file read with a size limit, parsed as TOML, and every unknown
//! key or value of the wrong type reported at once (not one per run), with its line.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{ConfigError, RawConfig};

/// The largest settings (or secret) file read; settings files are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The longest line of a message echoing a value; longer ones are cut with a note.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Reads a text file of at most [`MAX_FILE_BYTES`]; refuses a bigger one (or an endless one
/// such as `/dev/zero`) without reading past the limit.
pub fn read_limited(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err("is a folder, not a file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than the limit of {MAX_FILE_BYTES} bytes (is it the right file?)"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Cuts each line of `message` to [`MAX_MESSAGE_CHARS`] characters, saying how much was left out.
pub fn clip(message: &str) -> String {
    message
        .lines()
        .map(|line| {
            let n = line.chars().count();
            if n <= MAX_MESSAGE_CHARS {
                line.to_owned()
            } else {
                let kept: String = line.chars().take(MAX_MESSAGE_CHARS).collect();
                format!("{kept}… ({} more characters)", n - MAX_MESSAGE_CHARS)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses one layer's text; `origin` names it in messages. A syntax error stops at once (the
/// rest cannot be read); otherwise every bad key is reported together.
pub fn parse_layer(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: clip(e.to_string().trim_end()),
    })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut problems = Vec::new();
    for (section, value) in doc.get_ref() {
        let section_alone = match value.get_ref() {
            DeValue::Table(_) => Spanned::new(value.span(), DeValue::Table(DeTable::new())),
            _ => value.clone(),
        };
        let doc: DeTable<'_> = [(section.clone(), section_alone)].into_iter().collect();
        if let Err(e) = check(doc) {
            // An unknown section, or a value where a [section] belongs.
            problems.push(format!(
                "  {} (line {}): {}",
                section.get_ref(),
                line_of(section.span().start),
                e
            ));
            continue;
        }
        let entries: Vec<(String, usize, DeTable<'_>)> = match value.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .map(|(k, v)| {
                    let one: DeTable<'_> = [(k.clone(), v.clone())].into_iter().collect();
                    (
                        format!("{}.{}", section.get_ref(), k.get_ref()),
                        k.span().start,
                        one,
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        for (key, offset, one) in entries {
            let doc: DeTable<'_> = [(
                section.clone(),
                Spanned::new(value.span(), DeValue::Table(one)),
            )]
            .into_iter()
            .collect();
            if let Err(e) = check(doc) {
                problems.push(format!("  {key} (line {}): {e}", line_of(offset)));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Parse {
            origin: origin.to_owned(),
            message: clip(&format!(
                "{} problem(s):\n{}",
                problems.len(),
                problems.join("\n")
            )),
        });
    }
    let whole = ValueDeserializer::from(Spanned::new(
        0..text.len(),
        DeValue::Table(doc.into_inner()),
    ));
    RawConfig::deserialize(whole).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: clip(e.message()),
    })
}

/// Deserializes a one-key document into [`RawConfig`]; the parser's message if it does not fit.
fn check(doc: DeTable<'_>) -> Result<(), String> {
    let de = ValueDeserializer::from(Spanned::new(0..0, DeValue::Table(doc)));
    RawConfig::deserialize(de)
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_key_is_reported_at_once_with_its_line() {
        let text = "[database]\nurl = \"sqlite://x.db\"\nbogus = 1\nmax_connections = \"many\"\n\
                    [mail]\nfrm = 2\n[nope]\na = 1\n";
        let msg = parse_layer(text, "f.toml").unwrap_err().to_string();
        for want in [
            "database.bogus (line 3)",
            "database.max_connections (line 4)",
            "mail.frm (line 6)",
            "nope (line 7)",
            "f.toml",
            "4 problem(s)",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
    }

    #[test]
    fn a_good_layer_parses() {
        let raw = parse_layer("[database]\nurl = \"sqlite://x.db\"\n", "f").unwrap();
        assert_eq!(raw.database.url.as_deref(), Some("sqlite://x.db"));
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(100_000);
        let msg = clip(&format!("value `{long}` is bad"));
        assert!(msg.len() < 1000, "{}", msg.len());
        assert!(msg.contains("more characters"));
    }

    #[test]
    fn an_endless_file_is_refused() {
        let err = read_limited(Path::new("/dev/zero")).unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }
}
