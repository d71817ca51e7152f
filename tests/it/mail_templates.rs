//! Email templates: every one renders in both languages, reasons in words, dates per locale,
//! locale fallback, escaping, overrides from the templates folder, broken files named.

use std::collections::BTreeSet;
use std::path::Path;

use cpor_worker::lifecycle::{InfoRequestReason, RejectionReason};
use cpor_worker::mail::{EmailContext, MailError, TemplateId, Templates, samples};

fn shipped() -> Templates {
    Templates::load(Path::new("/nonexistent-templates-dir")).expect("templates")
}

fn repo_templates() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
}

#[test]
fn every_template_renders_in_both_languages_with_no_undefined_variable() {
    // Strict undefined: a missing variable would be an error here.
    let t = Templates::load(repo_templates()).unwrap();
    let ids: BTreeSet<TemplateId> = samples::all().iter().map(|c| c.template_id()).collect();
    assert_eq!(ids.len(), TemplateId::ALL.len(), "a sample per template");
    for lang in ["en", "sv"] {
        for ctx in samples::all() {
            let r = t.render(lang, &ctx).unwrap();
            assert_eq!(r.locale_used, lang);
            assert!(!r.subject.is_empty() && !r.subject.contains(['\r', '\n']));
            assert!(
                r.text.len() > 100 && r.html.contains("</html>"),
                "{}",
                r.text
            );
            assert!(!r.text.contains("{{") && !r.html.contains("{{"));
        }
    }
}

#[test]
fn english_and_swedish_differ_and_use_their_own_date_format() {
    let t = shipped();
    let ctx = samples::partner_response_reminder(InfoRequestReason::MissingAllPoe);
    let en = t.render("en", &ctx).unwrap();
    let sv = t.render("sv", &ctx).unwrap();
    assert!(
        en.subject.contains("Friday, 8 January 2027"),
        "{}",
        en.subject
    );
    assert!(en.text.contains("Friday, 8 January 2027"));
    assert!(
        sv.subject.contains("fredag 8 januari 2027"),
        "{}",
        sv.subject
    );
    assert!(sv.html.contains("fredag 8 januari 2027"));
    assert!(sv.text.starts_with("Hej ") && en.text.starts_with("Hello "));
}

#[test]
fn every_reason_has_its_own_words_in_both_languages() {
    let t = shipped();
    for lang in ["en", "sv"] {
        let texts: BTreeSet<String> = RejectionReason::ALL
            .iter()
            .map(|r| t.render(lang, &samples::claim_rejected(*r)).unwrap().text)
            .collect();
        assert_eq!(
            texts.len(),
            RejectionReason::ALL.len(),
            "{lang} rejection reasons"
        );
        let texts: BTreeSet<String> = InfoRequestReason::ALL
            .iter()
            .map(|r| {
                let r = t
                    .render(lang, &samples::partner_response_reminder(*r))
                    .unwrap();
                assert!(!r.html.contains("missing_"), "an id leaked into {}", r.html);
                r.text
            })
            .collect();
        assert_eq!(
            texts.len(),
            InfoRequestReason::ALL.len(),
            "{lang} info reasons"
        );
    }
    let sv = t
        .render(
            "sv",
            &samples::claim_rejected(RejectionReason::CustomerDeclined),
        )
        .unwrap();
    assert!(
        sv.text.contains("Kunden har nekat medgivande"),
        "{}",
        sv.text
    );
    assert!(
        sv.text
            .contains("bestrida det till och med fredag 8 januari 2027")
    );
}

#[test]
fn locales_fall_back_from_region_to_language_to_english() {
    let t = shipped();
    for (locale, want) in [
        ("sv-SE", "sv"),
        ("sv_FI", "sv"),
        ("SV", "sv"),
        ("sv", "sv"),
        ("en-GB", "en"),
        ("de-DE", "en"),
        ("fr", "en"),
        ("", "en"),
    ] {
        assert_eq!(t.resolve_locale(locale), want, "{locale}");
        let r = t.render(locale, &samples::all()[0]).unwrap();
        assert_eq!(r.locale_used, want, "{locale}");
    }
}

#[test]
fn a_region_folder_is_preferred_and_a_file_in_the_folder_overrides_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let fi = dir.path().join("sv-FI");
    std::fs::create_dir_all(&fi).unwrap();
    for entry in std::fs::read_dir(repo_templates().join("sv"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), fi.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        fi.join("claim_rejected.subject.j2"),
        "Finland: {{ claim_id }}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("en")).unwrap();
    std::fs::write(
        dir.path().join("en/claim_rejected.subject.j2"),
        "Override {{ claim_id }}",
    )
    .unwrap();
    let t = Templates::load(dir.path()).unwrap();
    let ctx = samples::claim_rejected(RejectionReason::InsufficientPoe);
    let fi = t.render("sv-FI", &ctx).unwrap();
    assert_eq!(
        (fi.locale_used.as_str(), fi.subject.as_str()),
        ("sv-FI", "Finland: CLM-2027-0042")
    );
    assert_eq!(t.render("sv-SE", &ctx).unwrap().locale_used, "sv");
    assert_eq!(
        t.render("en", &ctx).unwrap().subject,
        "Override CLM-2027-0042"
    );
}

#[test]
fn a_broken_template_fails_loading_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sv")).unwrap();
    let file = dir.path().join("sv/consent_request.html.j2");
    std::fs::write(&file, "<p>{{ customer_nmae }}</p>\n").unwrap();
    let err = Templates::load(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MailError::Template { .. }));
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(
        msg.contains("customer_nmae") && msg.contains("undefined"),
        "{msg}"
    );

    std::fs::write(&file, "{% if %}").unwrap();
    let msg = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains(&file.display().to_string()) && msg.contains("syntax"),
        "{msg}"
    );
}

#[test]
fn a_new_language_folder_must_have_every_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("de")).unwrap();
    std::fs::write(dir.path().join("de/claim_rejected.subject.j2"), "Abgelehnt").unwrap();
    let msg = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("de/") && msg.contains("(missing)"), "{msg}");
}

#[test]
fn names_are_html_escaped_in_the_html_part_only() {
    let t = shipped();
    let EmailContext::ConsentRequest(mut c) =
        samples::consent_request("https://x.example/d?token=T")
    else {
        unreachable!()
    };
    c.customer_name = "<script>alert('x')</script> & Co".into();
    c.partner_name = "<b>Bold</b> AB".into();
    let r = t.render("en", &EmailContext::ConsentRequest(c)).unwrap();
    assert!(
        !r.html.contains("<script>") && !r.html.contains("<b>Bold"),
        "{}",
        r.html
    );
    assert!(r.html.contains("&lt;script&gt;") && r.html.contains("&amp; Co"));
    assert!(r.text.contains("<script>alert('x')</script> & Co"));
    assert!(
        r.subject.contains("<b>Bold</b> AB"),
        "subjects are plain text"
    );
}

#[test]
fn a_context_stored_as_json_renders_the_same() {
    let t = shipped();
    for ctx in samples::all() {
        let json = serde_json::to_string(&ctx).unwrap();
        let back: EmailContext = serde_json::from_str(&json).unwrap();
        assert_eq!(
            t.render("sv", &back).unwrap(),
            t.render("sv", &ctx).unwrap()
        );
    }
}
