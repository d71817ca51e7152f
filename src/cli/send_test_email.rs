//! `cpor-worker send-test-email --to ADDR`: render one sample of every template in every language
//! the templates have (`en`, `sv`, `de` and any added folder) and deliver each through the
//! configured transport (SMTP, or `.eml` files).

use std::path::Path;

use anyhow::Context;
use chrono::{TimeZone, Utc};

use super::SendTestEmailArgs;
use crate::mail::{
    EmailContext, OutgoingEmail, Templates, decline_link, samples, transport_from_config,
};

/// Runs `send-test-email`.
pub async fn run(config_path: Option<&Path>, args: SendTestEmailArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let templates = Templates::load(&config.templates_dir).context("email templates")?;
    let transport = transport_from_config(&config.mail).context("mail transport")?;
    println!("sending to {} via {}", args.to, transport.describe());
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let window_end = Utc
        .with_ymd_and_hms(2027, 1, 8, 23, 0, 0)
        .single()
        .context("sample window end")?;
    let link = decline_link(
        &config.decline_url,
        &config.consent_secret,
        "CLM-2027-0042",
        window_end,
    );
    let mut sent = 0;
    let langs: Vec<String> = templates.languages().map(str::to_owned).collect();
    for lang in &langs {
        let lang = lang.as_str();
        for ctx in samples::all() {
            let ctx = match ctx {
                EmailContext::ConsentRequest(_) => samples::consent_request(&link),
                other => other,
            };
            let id = ctx.template_id();
            let rendered = templates
                .render(lang, &ctx)
                .with_context(|| format!("render {id} ({lang})"))?;
            let email = OutgoingEmail {
                message_id: format!("test-{id}-{lang}-{stamp}"),
                from: config.mail.from.clone(),
                to_name: String::new(),
                to_address: args.to.clone(),
                subject: format!("[test] {}", rendered.subject),
                text: rendered.text,
                html: rendered.html,
            };
            transport
                .send(&email)
                .await
                .with_context(|| format!("send {id} ({lang})"))?;
            println!("sent {id} ({lang})");
            sent += 1;
        }
    }
    println!("{sent} test emails sent");
    Ok(())
}
