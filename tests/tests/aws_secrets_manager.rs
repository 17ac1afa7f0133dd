//! The `aws-secrets-manager` vault type end to end, through the shim and
//! the official AWS SDK, against moto (`pip install 'moto[server]'`), AWS
//! Secrets Manager on loopback: listing under a prefix, a plain secret and
//! one field of a JSON one, writes that create, replace and merge, keys
//! named by the vault and the SDK's own credential chain, and a backend
//! that cannot be reached beside one that can.

use agent_vault_e2e::peers::Moto;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

fn config(endpoint: &str, dead: &str) -> String {
    format!(
        r#"{{
  "vaults": {{
    "aws": {{
      "type": "aws-secrets-manager",
      "region": "us-east-1",
      "endpoint": "{endpoint}",
      "prefix": "app/",
      "accessKeyId": "env:APP_AWS_KEY_ID",
      "secretAccessKey": "env:APP_AWS_SECRET",
      "writable": true,
      "ttl": 60,
      "ttlScope": "vault"
    }},
    "chain": {{ "type": "aws-secrets-manager", "region": "us-east-1", "endpoint": "{endpoint}" }},
    "nokeys": {{
      "type": "aws-secrets-manager",
      "region": "us-east-1",
      "endpoint": "{endpoint}",
      "accessKeyId": "env:UNSET_KEY_ID",
      "secretAccessKey": "env:UNSET_SECRET"
    }},
    "dead": {{
      "type": "aws-secrets-manager",
      "region": "us-east-1",
      "endpoint": "{dead}",
      "accessKeyId": "env:APP_AWS_KEY_ID",
      "secretAccessKey": "env:APP_AWS_SECRET",
      "timeoutSeconds": 5
    }}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 20 }}
}}"#
    )
}

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "aws test"})
}

async fn current(moto: &Moto, id: &str) -> Result<String> {
    let v = moto
        .secrets_manager("GetSecretValue", json!({"SecretId": id}))
        .await?;
    Ok(v["SecretString"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_through_the_shim_against_moto() -> Result<()> {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    for (name, value) in [
        ("app/db", r#"{"user":"web","password":"pg-pass-aws-71"}"#),
        ("app/stripe/key", "sk-aws-5b5b"),
        ("other/x", "outside-0e0e"),
    ] {
        moto.secrets_manager("CreateSecret", json!({"Name": name, "SecretString": value}))
            .await?;
    }
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    );
    let home = Home::with_config(&config(&moto.endpoint, &dead))?;
    let daemon = Daemon::start(&home, |c| {
        c.env("APP_AWS_KEY_ID", "AKIAAPPTEST0001")
            .env("APP_AWS_SECRET", "app-aws-secret-key-9f9f")
            // The SDK's standard chain, for the vault that names no keys.
            .env("AWS_ACCESS_KEY_ID", "AKIADAEMONCHAIN01")
            .env("AWS_SECRET_ACCESS_KEY", "daemon-chain-secret-3c3c")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let started = std::time::Instant::now();
    let listed = agent.call("list_secrets", json!({})).await?;
    let text = listed.text();
    // Under the prefix, without it; the chain vault (no prefix) sees all.
    assert!(
        text.contains("[aws] (writable)\n  - db\n  - stripe/key\n\n[chain]\n  - app/db\n  - app/stripe/key\n  - other/x\n"),
        "{text}"
    );
    assert!(
        text.contains("vault \"nokeys\": the backend refused the vault's credentials")
            && text.contains("no usable AWS credentials: env:UNSET_KEY_ID: the environment variable UNSET_KEY_ID is not set"),
        "{text}"
    );
    assert!(
        text.contains("vault \"dead\" is unavailable")
            || text.contains("vault \"dead\" did not answer"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());

    // One field of a JSON secret, after an approval; then a plain one and
    // the whole JSON, in the window.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("aws", "db#password"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "pg-pass-aws-71", "{r:?}");
    let r = agent.call("get_secret", get("aws", "stripe/key")).await?;
    assert!(!r.is_error && r.text() == "sk-aws-5b5b", "{r:?}");
    let r = agent.call("get_secret", get("aws", "db")).await?;
    let whole: Value = serde_json::from_str(&r.text())?;
    assert_eq!(whole, json!({"user": "web", "password": "pg-pass-aws-71"}));
    // Unknown secrets and fields fail before anyone is asked; so does a
    // name AWS could not have.
    let r = agent.call("get_secret", get("aws", "nope")).await?;
    assert!(
        r.is_error && r.text().contains("no secret named nope"),
        "{r:?}"
    );
    let r = agent.call("get_secret", get("aws", "db#nope")).await?;
    assert!(
        r.is_error && r.text().contains("no secret named db#nope"),
        "{r:?}"
    );
    let r = agent.call("get_secret", get("aws", "a b")).await?;
    assert!(
        r.is_error && r.text().contains("is not a secret name"),
        "{r:?}"
    );
    // A field of a secret that is not JSON.
    let r = agent.call("get_secret", get("aws", "stripe/key#x")).await?;
    assert!(
        r.is_error && r.text().contains("not a JSON object") && !r.text().contains("sk-aws"),
        "{r:?}"
    );

    // Writes: replace a plain secret, merge one field (the others kept),
    // create a secret, create one with one field.
    let mut agent = agent;
    for (name, value) in [
        ("stripe/key", "sk-aws-rotated"),
        ("db#password", "pg-pass-aws-rotated"),
        ("new/token", "tok-new-aws"),
        ("new/json#key", "k-new-aws"),
    ] {
        let (r, a) = call_and_decide(
            &home,
            &approver,
            agent,
            "set_secret",
            json!({"vault": "aws", "name": name, "value": value, "reason": "write test"}),
            "approve",
        )
        .await?;
        assert!(!r.is_error, "{name}: {r:?}");
        agent = a;
    }
    assert_eq!(current(&moto, "app/stripe/key").await?, "sk-aws-rotated");
    let db: Value = serde_json::from_str(&current(&moto, "app/db").await?)?;
    assert_eq!(
        db,
        json!({"user": "web", "password": "pg-pass-aws-rotated"})
    );
    assert_eq!(current(&moto, "app/new/token").await?, "tok-new-aws");
    let j: Value = serde_json::from_str(&current(&moto, "app/new/json").await?)?;
    assert_eq!(j, json!({"key": "k-new-aws"}));
    // The write ended the list cache: the new names are listed at once.
    let listed = agent.call("list_secrets", json!({"vault": "aws"})).await?;
    assert!(listed.text().contains("new/token"), "{}", listed.text());

    // The daemon's own chain serves its own config's vault.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("chain", "other/x"),
        "approve",
    )
    .await?;
    assert!(!r.is_error && r.text() == "outside-0e0e", "{r:?}");
    agent.stop().await;

    // A project config (a file the agent writes) that names no keys of its
    // own would borrow the daemon's chain, which can read every secret: it
    // is refused, and so is one that names a daemon profile.
    for (vault, field) in [
        (
            json!({"type": "aws-secrets-manager", "region": "us-east-1", "endpoint": moto.endpoint}),
            "vaults.mine.accessKeyId",
        ),
        (
            json!({"type": "aws-secrets-manager", "profile": "default"}),
            "vaults.mine.profile",
        ),
    ] {
        let project = home.dir.path().join(format!("project-{}", field.len()));
        std::fs::create_dir_all(&project)?;
        std::fs::write(
            project.join("agent-vault.config.json"),
            json!({"vaults": {"mine": vault}}).to_string(),
        )?;
        let agent = Agent::start_in(&home, &project).await?;
        let r = agent.call("get_secret", get("mine", "other/x")).await?;
        assert!(r.is_error && r.text().contains(field), "{r:?}");
        assert!(!r.text().contains("outside-0e0e"), "{r:?}");
        agent.stop().await;
    }

    let status = home.cli_json(&["status"])?;
    let vaults = status["vaults"].to_string();
    assert!(vaults.contains("AWS Secrets Manager at"), "{vaults}");

    let log = daemon.log();
    for secret in [
        "pg-pass-aws-71",
        "sk-aws-5b5b",
        "sk-aws-rotated",
        "pg-pass-aws-rotated",
        "app-aws-secret-key-9f9f",
        "daemon-chain-secret-3c3c",
    ] {
        assert!(!log.contains(secret), "{secret} in the daemon's log");
    }
    Ok(())
}

/// Keys AWS does not know, and keys whose policy does not allow a read:
/// each refusal reaches the agent as what it is, through the SDK's errors.
#[tokio::test(flavor = "multi_thread")]
async fn refused_keys_and_a_policy_that_forbids_reads() -> Result<()> {
    // Four calls to set up, then every call is checked against IAM.
    let Some(moto) = Moto::start_with_iam(4).await? else {
        return Ok(());
    };
    moto.iam("CreateUser", &[("UserName", "agent")]).await?;
    let created = moto
        .iam("CreateAccessKey", &[("UserName", "agent")])
        .await?;
    let tag = |t: &str| -> Result<String> {
        let (_, rest) = created
            .split_once(&format!("<{t}>"))
            .ok_or_else(|| anyhow::anyhow!("no {t} in {created}"))?;
        Ok(rest
            .split(&format!("</{t}>"))
            .next()
            .unwrap_or_default()
            .to_string())
    };
    let (key_id, secret) = (tag("AccessKeyId")?, tag("SecretAccessKey")?);
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:ListSecrets"], "Resource": "*"}
    ]});
    moto.iam(
        "PutUserPolicy",
        &[
            ("UserName", "agent"),
            ("PolicyName", "list-only"),
            ("PolicyDocument", &policy.to_string()),
        ],
    )
    .await?;
    moto.secrets_manager(
        "CreateSecret",
        json!({"Name": "app/db", "SecretString": "pg-iam-42"}),
    )
    .await?;

    let vault = |id: &str, secret: &str| {
        json!({"type": "aws-secrets-manager", "region": "us-east-1", "endpoint": moto.endpoint,
               "prefix": "app/", "accessKeyId": id, "secretAccessKey": secret})
    };
    let config = json!({
        "vaults": {
            "limited": vault("env:LIMITED_ID", "env:LIMITED_SECRET"),
            "stranger": vault("env:STRANGER_ID", "env:STRANGER_SECRET"),
        },
        "port": 0,
        "approval": {"waitSeconds": 20}
    });
    let home = Home::with_config(&config.to_string())?;
    let daemon = Daemon::start(&home, |c| {
        c.env("LIMITED_ID", &key_id)
            .env("LIMITED_SECRET", &secret)
            .env("STRANGER_ID", "AKIANOTKNOWN00000000")
            .env("STRANGER_SECRET", "not-known-secret-7d7d")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let text = agent.call("list_secrets", json!({})).await?.text();
    assert!(text.contains("[limited]\n  - db\n"), "{text}");
    assert!(
        text.contains("vault \"stranger\": ") && text.contains("InvalidClientTokenId"),
        "{text}"
    );
    // Listed, approved, and then refused by AWS: the agent is told so.
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        get("limited", "db"),
        "approve",
    )
    .await?;
    assert!(
        r.is_error
            && r.text().contains("its credentials may not do this")
            && r.text().contains("secretsmanager:GetSecretValue")
            && !r.text().contains("pg-iam-42"),
        "{r:?}"
    );
    agent.stop().await;
    let log = daemon.log();
    for s in ["pg-iam-42", secret.as_str(), "not-known-secret-7d7d"] {
        assert!(!log.contains(s), "{s} in the daemon's log");
    }
    Ok(())
}
