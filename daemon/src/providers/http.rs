//! What the providers that speak HTTP share: a client, sending a request
//! and reading its JSON answer, the contract's error for an HTTP status,
//! and URLs in which every segment of an API path is percent-encoded on
//! its own, so that a name an agent chose (a `?`, a `#`, a `%2F`) is
//! always part of one segment, never a query, a fragment or another path.

use std::time::Duration;

use serde_json::Value;

use super::contract::ProviderError;

/// A client that gives up connecting after 5 s and follows no redirect
/// (a credential is never sent on to another host).
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot set up an HTTP client: {e}"))
}

/// Sends `request` to `server`; the status and the JSON answer (Null if
/// there is none or it is not JSON).
pub async fn send_json(
    vault: &str,
    server: &str,
    request: reqwest::RequestBuilder,
) -> Result<(u16, Value), ProviderError> {
    let unavailable = |why: String| ProviderError::Unavailable {
        vault: vault.to_string(),
        why,
    };
    let res = request.send().await.map_err(|e| {
        unavailable(if e.is_connect() {
            format!("cannot connect to {server}")
        } else if e.is_timeout() {
            format!("{server} did not answer")
        } else {
            format!("the request to {server} failed")
        })
    })?;
    let status = res.status().as_u16();
    let bytes = res
        .bytes()
        .await
        .map_err(|_| unavailable("the answer was cut off".into()))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// A server's own words, fit for a message: no control characters, at
/// most 200 characters.
pub fn words(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The contract's error for a failed HTTP call; `why` is the server's
/// words (see [`words`]).
pub fn status_error(vault: &str, status: u16, why: &str) -> ProviderError {
    let vault = vault.to_string();
    let why = format!("{why} (HTTP {status})");
    match status {
        401 => ProviderError::Unauthorized { vault, why },
        403 => ProviderError::Forbidden { vault, why },
        404 => ProviderError::NotFound { vault, why },
        400 | 409 => ProviderError::Invalid(format!("vault \"{vault}\": {why}")),
        429 => ProviderError::Unavailable {
            vault,
            why: format!("rate-limited: {why}"),
        },
        _ => ProviderError::Unavailable { vault, why },
    }
}

/// `base` (which may have a path of its own) + `v1` + each `/`-separated
/// segment of `path`, encoded.
pub fn api_url(base: &url::Url, path: &str) -> Result<url::Url, String> {
    join(base, std::iter::once("v1").chain(path.split('/')))
}

/// `base` (which may have a path of its own) + each of `segments`, each
/// encoded as one segment.
pub fn join<'a>(
    base: &url::Url,
    segments: impl IntoIterator<Item = &'a str>,
) -> Result<url::Url, String> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| format!("{base} cannot have a path"))?;
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_is_encoded_on_its_own() -> Result<(), Box<dyn std::error::Error>> {
        let base = url::Url::parse("https://vault.example.com:8200/prefix/")?;
        let u = api_url(&base, "secret/data/a?list=true#x/b%2Fc d")?;
        assert_eq!(
            u.as_str(),
            "https://vault.example.com:8200/prefix/v1/secret/data/a%3Flist=true%23x/b%252Fc%20d"
        );
        assert_eq!(u.query(), None);
        let root = api_url(
            &url::Url::parse("http://127.0.0.1:8200")?,
            "secret/metadata/",
        )?;
        assert_eq!(root.as_str(), "http://127.0.0.1:8200/v1/secret/metadata/");
        Ok(())
    }
}
