//! Email templates: every one renders in every shipped language (en, sv, de), reasons in words,
//! dates in words per locale (CLDR), the time zone named beside every last day, the rejection
//! wording per reason, one sender name, locale fallback, escaping, overrides from the templates
//! folder, broken files named.

use std::collections::BTreeSet;
use std::path::Path;

use cpor_worker::lifecycle::{InfoRequestReason, RejectionReason};
use cpor_worker::mail::templates::SHIPPED_LANGS;
use cpor_worker::mail::{EmailContext, EmailKind, MailError, Templates, samples};

fn shipped() -> Templates {
    Templates::load(Path::new("/nonexistent-templates-dir")).expect("templates")
}

fn repo_templates() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
}

#[test]
fn every_template_renders_in_every_shipped_language_with_no_undefined_variable() {
    // Strict undefined: a missing variable would be an error here.
    let t = Templates::load(repo_templates()).unwrap();
    let ids: BTreeSet<EmailKind> = samples::all().iter().map(|c| c.template_id()).collect();
    assert_eq!(ids.len(), EmailKind::ALL.len(), "a sample per template");
    assert_eq!(SHIPPED_LANGS, ["en", "sv", "de"]);
    for &lang in SHIPPED_LANGS {
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
    let en = t.render("en-GB", &ctx).unwrap();
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
fn every_reason_has_its_own_words_in_every_language() {
    let t = shipped();
    for &lang in SHIPPED_LANGS {
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
        ("de-DE", "de"),
        ("de_AT", "de"),
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
    std::fs::create_dir_all(dir.path().join("fr")).unwrap();
    std::fs::write(dir.path().join("fr/claim_rejected.subject.j2"), "Rejetée").unwrap();
    let msg = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("fr/") && msg.contains("(missing)"), "{msg}");
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

/// The sentence each language uses to invite a partner to dispute a rejection.
fn dispute_invitation(lang: &str) -> &'static str {
    match lang {
        "en" => "If you believe the rejection is wrong",
        "sv" => "Om ni anser att beslutet är fel",
        "de" => "Wenn Sie die Ablehnung für unzutreffend halten",
        _ => unreachable!(),
    }
}

/// How each language points to the reviewer's comments.
fn reviewer_comments(lang: &str) -> &'static str {
    match lang {
        "en" => "the reviewer's comments",
        "sv" => "granskarens kommentarer",
        "de" => "Kommentare des Prüfteams",
        _ => unreachable!(),
    }
}

#[test]
fn en_us_and_en_gb_share_the_english_text_but_not_the_date_order() {
    let t = shipped();
    let ctx = samples::claim_rejected(RejectionReason::InsufficientPoe);
    let us = t.render("en-US", &ctx).unwrap();
    let gb = t.render("en-GB", &ctx).unwrap();
    assert_eq!(
        (us.locale_used.as_str(), gb.locale_used.as_str()),
        ("en", "en")
    );
    for part in [&us.text, &us.html] {
        assert!(part.contains("Friday, January 8, 2027"), "{part}");
        assert!(!part.contains("8 January"), "{part}");
    }
    for part in [&gb.text, &gb.html] {
        assert!(part.contains("Friday, 8 January 2027"), "{part}");
        assert!(!part.contains("January 8"), "{part}");
    }
    // Nothing else differs: the same English sentences around the date.
    assert_eq!(
        us.text.replace("January 8, 2027", "D"),
        gb.text.replace("8 January 2027", "D")
    );
}

#[test]
fn german_dates_and_regional_variants_come_from_cldr() {
    let t = shipped();
    let ctx = samples::partner_response_reminder(InfoRequestReason::MissingProducts);
    let de = t.render("de-DE", &ctx).unwrap();
    assert_eq!(de.locale_used, "de");
    assert!(
        de.subject.contains("Freitag, 8. Januar 2027"),
        "{}",
        de.subject
    );
    assert!(de.text.starts_with("Guten Tag "), "{}", de.text);
    let at = t.render("de-AT", &ctx).unwrap();
    assert!(at.text.contains("Freitag, 8. Jänner 2027"), "{}", at.text);
    let sv_fi = t.render("sv-FI", &ctx).unwrap();
    assert!(
        sv_fi.text.contains("fredag 8 januari 2027"),
        "{}",
        sv_fi.text
    );
}

/// Each email that names a last day, with its zone replaced by `tz`.
fn with_zone(ctx: EmailContext, tz: chrono_tz::Tz) -> EmailContext {
    let mut ctx = ctx;
    match &mut ctx {
        EmailContext::PartnerResponseReminder(c) => c.time_zone = tz,
        EmailContext::ClaimRejected(c) => c.time_zone = tz,
        EmailContext::ConsentRequest(c) => c.time_zone = tz,
        EmailContext::PartnerApprovalNotice(c) => c.time_zone = tz,
        EmailContext::ForwardedToIncentiveEvaluation(_) | EmailContext::SlaAlertDigest(_) => {}
    }
    ctx
}

#[test]
fn every_email_that_names_a_last_day_names_its_time_zone_in_the_readers_words() {
    let t = shipped();
    let naming: Vec<EmailContext> = samples::all()
        .into_iter()
        .filter(|c| c.time_zone().is_some())
        .collect();
    assert_eq!(
        naming.len(),
        4,
        "reminder, rejection, consent request, approval"
    );
    let cases = [
        (
            "en-GB",
            chrono_tz::Europe::Stockholm,
            ", end of day, Stockholm time",
        ),
        (
            "en-US",
            chrono_tz::Europe::Copenhagen,
            ", end of day, Copenhagen time",
        ),
        (
            "en-US",
            chrono_tz::America::New_York,
            ", end of day, New York time",
        ),
        (
            "sv-SE",
            chrono_tz::Europe::Stockholm,
            " kl. 24.00 (tid i Stockholm)",
        ),
        (
            "sv-SE",
            chrono_tz::Europe::Copenhagen,
            " kl. 24.00 (tid i Köpenhamn)",
        ),
        (
            "de-DE",
            chrono_tz::Europe::Berlin,
            ", 24:00 Uhr (Ortszeit Berlin)",
        ),
        (
            "de-DE",
            chrono_tz::Europe::Copenhagen,
            ", 24:00 Uhr (Ortszeit Kopenhagen)",
        ),
        ("en-GB", chrono_tz::UTC, ", end of day, UTC time"),
    ];
    for ctx in naming {
        for (locale, tz, phrase) in cases {
            let r = t.render(locale, &with_zone(ctx.clone(), tz)).unwrap();
            for (part, body) in [("text", &r.text), ("html", &r.html)] {
                assert!(
                    body.contains(phrase),
                    "{} {locale} {tz} {part} lacks `{phrase}`:\n{body}",
                    ctx.template_id()
                );
            }
        }
    }
}

#[test]
fn a_partner_request_rejection_does_not_invite_the_partner_to_dispute_their_own_request() {
    let t = shipped();
    for &lang in SHIPPED_LANGS {
        let own = t
            .render(
                lang,
                &samples::claim_rejected(RejectionReason::PartnerRequest),
            )
            .unwrap();
        let other = t
            .render(
                lang,
                &samples::claim_rejected(RejectionReason::InsufficientPoe),
            )
            .unwrap();
        let invitation = dispute_invitation(lang);
        assert!(other.text.contains(invitation) && other.html.contains(invitation));
        for body in [&own.text, &own.html] {
            assert!(!body.contains(invitation), "{lang}: {body}");
            assert!(!body.contains(reviewer_comments(lang)), "{lang}: {body}");
            // SPEC: the rejection email still names the last day to dispute, and its zone.
            assert!(body.contains("Stockholm"), "{lang}: {body}");
        }
        assert_ne!(
            own.subject, other.subject,
            "{lang}: the subject says it was asked for"
        );
    }
}

#[test]
fn automatic_rejections_do_not_point_to_the_reviewers_comments() {
    let t = shipped();
    for &lang in SHIPPED_LANGS {
        let comments = reviewer_comments(lang);
        for reason in RejectionReason::ALL {
            let r = t.render(lang, &samples::claim_rejected(*reason)).unwrap();
            let automatic = matches!(
                reason,
                RejectionReason::NoPartnerResponse | RejectionReason::CustomerDeclined
            );
            let by_reviewer = !automatic && *reason != RejectionReason::PartnerRequest;
            for body in [&r.text, &r.html] {
                assert_eq!(
                    body.contains(comments),
                    by_reviewer,
                    "{lang} {reason:?}: {body}"
                );
            }
            if automatic {
                assert!(
                    r.text.contains(dispute_invitation(lang)),
                    "{lang} {reason:?}"
                );
            }
        }
    }
}

#[test]
fn every_email_is_signed_with_the_sender_name_of_the_default_settings() {
    let settings: toml::Table = toml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap(),
    )
    .unwrap();
    let from = settings["mail"]["from"].as_str().unwrap();
    let sender = from[..from.find('<').unwrap()].trim();
    assert_eq!(sender, "CPOR Claims");
    let t = shipped();
    for &lang in SHIPPED_LANGS {
        for ctx in samples::all() {
            let r = t.render(lang, &ctx).unwrap();
            let sign_off: Vec<&str> = r.text.trim_end().lines().rev().take(4).collect();
            assert!(
                sign_off.iter().any(|l| l.starts_with(sender)),
                "{lang} {}: {sign_off:?}",
                ctx.template_id()
            );
            assert!(r.html.contains(&format!("<br>{sender}</p>")), "{lang}");
            assert!(!r.text.contains("CPOR-teamet") && !r.html.contains("CPOR-teamet"));
        }
    }
}
