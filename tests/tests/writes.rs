//! Writes: set_secret round trips through the approval and leaves every
//! other byte of the file as it was.

use std::os::unix::fs::MetadataExt;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

const ORIGINAL: &str = "# writable vault\n\nKEEP=me   # a comment\nexport QUOTED=\"a \\\"b\\\"\"\nMULTI=\"line1\nline2\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn set_secret_round_trip_keeps_the_other_bytes() -> Result<()> {
    let home = Home::new()?;
    std::fs::write(home.project.join(".env.rw"), ORIGINAL)?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let value = "s3cr3t \"quoted\" $HOME\\n #not-a-comment\nsecond line-long-enough-to-mask";

    let call = agent.call_in_background("set_secret", json!({"vault": "rw", "name": "NEW_TOKEN", "value": value, "reason": "store the generated token"}));
    let pending = one_pending(&home).await?;
    assert_eq!(pending["operation"], json!("WRITE"));
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    let (_, page) = approver.page(&format!("/approve/{id}")).await?;
    assert!(page.contains(">WRITE<"));
    assert!(
        !page.contains("s3cr3t") && !page.contains("quoted"),
        "the value is masked"
    );
    assert!(page.contains("(70 chars)"), "{page}");
    approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(!r.is_error && r.text().contains("Saved NEW_TOKEN"), "{r:?}");

    let after = std::fs::read_to_string(home.project.join(".env.rw"))?;
    assert!(
        after.starts_with(ORIGINAL),
        "every other byte kept:\n{after}"
    );
    assert_eq!(
        std::fs::metadata(home.project.join(".env.rw"))?.mode() & 0o777,
        0o600
    );

    // Update in place, then read it back through an approval.
    let call = agent.call_in_background("set_secrets", json!({"vault": "rw", "secrets": [{"name": "KEEP", "value": "changed"}], "reason": "rotate"}));
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (_, agent) = call.finish().await?;
    let updated = std::fs::read_to_string(home.project.join(".env.rw"))?;
    assert_eq!(
        updated,
        after.replacen("KEEP=me   # a comment", "KEEP=changed   # a comment", 1),
        "only the value changed, in place"
    );

    let call = agent.call_in_background(
        "get_secrets",
        json!({"vault": "rw", "names": ["NEW_TOKEN", "QUOTED", "MULTI"], "reason": "verify"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.finish().await?;
    assert_eq!(
        r.texts,
        [
            format!("[NEW_TOKEN]\n{value}"),
            "[QUOTED]\na \"b\"".to_string(),
            "[MULTI]\nline1\nline2".to_string()
        ]
    );

    // A read-only vault refuses writes before anyone is asked.
    let r = agent
        .call(
            "set_secret",
            json!({"vault": "dev", "name": "X", "value": "v", "reason": "nope"}),
        )
        .await?;
    assert!(r.is_error && r.text().contains("not writable"), "{r:?}");
    let r = agent
        .call(
            "set_secret",
            json!({"vault": "rw", "name": "BAD NAME", "value": "v", "reason": "nope"}),
        )
        .await?;
    assert!(r.is_error && r.text().contains("invalid name"), "{r:?}");
    assert_eq!(
        home.cli_json(&["pending"])?.as_array().map_or(1, Vec::len),
        0
    );
    assert!(!daemon.log().contains("s3cr3t"));
    agent.stop().await;
    Ok(())
}
