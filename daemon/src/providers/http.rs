//! URLs for the providers that speak HTTP: every segment of an API path is
//! percent-encoded on its own, so that a name an agent chose (a `?`, a `#`,
//! a `%2F`) is always part of one segment, never a query, a fragment or
//! another path.

/// `base` (which may have a path of its own) + `v1` + each `/`-separated
/// segment of `path`, encoded.
pub fn api_url(base: &url::Url, path: &str) -> Result<url::Url, String> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| format!("{base} cannot have a path"))?;
        segments.pop_if_empty().push("v1");
        for s in path.split('/') {
            segments.push(s);
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
